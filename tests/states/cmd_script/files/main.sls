run script:
  cmd.script:
    - source: salt://script.sh
    - args: one two
    - cwd: @TARGET@
