include:
  - base
  - .sub.extra
extend:
  from base:
    test.succeed_without_changes:
      - name: extended name
own:
  test.succeed_with_changes
