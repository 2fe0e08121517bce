provider:
  test.succeed_with_changes:
    - require_in:
      - test: consumer
    - watch_in:
      - cmd: watcher
    - onchanges_in:
      - test: reactor
failing:
  test.fail_without_changes:
    - onfail_in:
      - test: rescuer
consumer:
  test.succeed_without_changes
watcher:
  cmd.run:
    - name: echo watched
reactor:
  test.succeed_with_changes
rescuer:
  test.succeed_with_changes
