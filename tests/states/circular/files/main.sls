chicken:
  test.succeed_with_changes:
    - require:
      - test: egg
egg:
  test.succeed_with_changes:
    - require:
      - test: chicken
