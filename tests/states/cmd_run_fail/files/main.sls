fails:
  cmd.run:
    - name: echo out; echo err >&2; exit 3
stateful:
  cmd.run:
    - name: "echo; echo changed=yes comment='said so'"
    - stateful: True
not stateful:
  cmd.run:
    - name: "echo changed=no"
    - stateful: False
