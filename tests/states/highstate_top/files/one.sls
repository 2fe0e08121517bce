from one:
  test.succeed_with_changes
