right hash:
  file.managed:
    - name: @TARGET@/right.txt
    - source: salt://checked.txt
    - source_hash: sha256=d0d3df886f770c94b4844163329bd60ec85b3221ffd05d990072e4cec0e1a5c0
wrong hash local:
  file.managed:
    - name: @TARGET@/wrong.txt
    - source: @FILES@/checked.txt
    - source_hash: sha256=0000000000000000000000000000000000000000000000000000000000000000
