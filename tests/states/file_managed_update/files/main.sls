@TARGET@/config.ini:
  file.managed:
    - contents: |
        alpha
        BETA
        gamma
        delta
@TARGET@/keep.txt:
  file.managed:
    - contents: replaced?
    - replace: False
@TARGET@/same.txt:
  file.managed:
    - contents: same
    - mode: "0600"
