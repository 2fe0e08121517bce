config:
  file.managed:
    - name: @TARGET@/app.conf
    - contents: setting=1
reload:
  cmd.wait:
    - name: echo reloaded
    - watch:
      - file: config
idle:
  cmd.wait:
    - name: echo never
    - watch:
      - test: steady
steady:
  test.succeed_without_changes
