broken:
  test.nop:
    - name: [unclosed
  - bad indent
