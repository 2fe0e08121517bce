runs last:
  test.succeed_without_changes:
    - order: last
number two:
  test.succeed_without_changes:
    - order: 2
plain one:
  test.succeed_without_changes
runs first:
  test.succeed_without_changes:
    - order: 1
plain two:
  test.succeed_without_changes
