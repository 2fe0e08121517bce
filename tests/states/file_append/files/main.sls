@TARGET@/list.txt:
  file.append:
    - text:
      - line two
      - line three
append again:
  file.append:
    - name: @TARGET@/list.txt
    - text: line two
@TARGET@/fresh.txt:
  file.append:
    - text: created by append
