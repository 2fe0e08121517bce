from two:
  file.managed:
    - name: @TARGET@/two.txt
    - contents: two
