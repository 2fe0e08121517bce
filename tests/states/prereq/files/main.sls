before change:
  cmd.run:
    - name: echo preparing
    - prereq:
      - file: will change
will change:
  file.managed:
    - name: @TARGET@/p.txt
    - contents: p
before nothing:
  cmd.run:
    - name: echo never
    - prereq:
      - test: no change
no change:
  test.succeed_without_changes
