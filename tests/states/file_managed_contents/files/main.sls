one line:
  file.managed:
    - name: @TARGET@/one.txt
    - contents: just one line
several:
  file.managed:
    - name: @TARGET@/several.txt
    - contents:
      - first
      - second
empty:
  file.managed:
    - name: @TARGET@/empty.txt
