changes:
  test.succeed_with_changes
no changes:
  test.succeed_without_changes
after change:
  test.succeed_with_changes:
    - onchanges:
      - test: changes
after no change:
  test.succeed_with_changes:
    - onchanges:
      - test: no changes
any:
  test.succeed_with_changes:
    - onchanges_any:
      - test: changes
      - test: no changes
