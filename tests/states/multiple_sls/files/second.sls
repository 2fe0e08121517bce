second:
  test.fail_without_changes
