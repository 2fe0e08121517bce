conf:
  file.managed:
    - name: @TARGET@/w.conf
    - contents: x
restart on change:
  cmd.run:
    - name: echo restarted
    - watch:
      - file: conf
unchanged:
  test.succeed_without_changes
watches unchanged:
  test.succeed_without_changes:
    - watch:
      - test: unchanged
watches failure:
  test.succeed_with_changes:
    - watch:
      - test: fails
fails:
  test.fail_without_changes
