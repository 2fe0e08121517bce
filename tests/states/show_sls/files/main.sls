shown:
  test.succeed_with_changes:
    - require:
      - test: other
other:
  test.nop
