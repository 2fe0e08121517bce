lonely:
  test.succeed_with_changes:
    - require:
      - test: nobody
fine:
  test.succeed_without_changes
