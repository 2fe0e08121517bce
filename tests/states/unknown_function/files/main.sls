bad function:
  test.no_such_function
bad module:
  nosuchmodule.present
