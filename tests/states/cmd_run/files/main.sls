echo hello:
  cmd.run:
    - cwd: @TARGET@
make file:
  cmd.run:
    - name: echo made > made.txt
    - cwd: @TARGET@
    - creates: @TARGET@/made.txt
skipped by creates:
  cmd.run:
    - name: echo never > never.txt
    - cwd: @TARGET@
    - creates: @TARGET@
skipped by unless:
  cmd.run:
    - name: echo unless
    - unless: "true"
run by unless:
  cmd.run:
    - name: echo ran
    - unless: "false"
skipped by onlyif:
  cmd.run:
    - name: echo onlyif
    - onlyif: "false"
run by onlyif:
  cmd.run:
    - name: printf 'two\nlines\n'
    - onlyif: "true"
