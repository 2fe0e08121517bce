changed:
  test.succeed_with_changes
unchanged:
  test.succeed_without_changes:
    - name: a name that is not the ID
failed:
  test.fail_without_changes:
    - comment: it failed on purpose
failed_with_changes:
  test.fail_with_changes
nothing:
  test.nop
