picked:
  test.succeed_with_changes
other:
  test.fail_without_changes
