needs good:
  test.succeed_with_changes:
    - require:
      - test: good
good:
  test.succeed_without_changes
needs bad:
  test.succeed_with_changes:
    - require:
      - bad
bad:
  test.fail_without_changes
needs needs bad:
  test.succeed_with_changes:
    - require:
      - test: needs bad
