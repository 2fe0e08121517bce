broken:
  test.fail_without_changes
fine:
  test.succeed_without_changes
recover:
  test.succeed_with_changes:
    - onfail:
      - test: broken
not needed:
  test.succeed_with_changes:
    - onfail:
      - test: fine
