from base:
  test.succeed_without_changes:
    - name: original name
