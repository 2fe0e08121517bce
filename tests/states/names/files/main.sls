many files:
  file.managed:
    - names:
      - @TARGET@/n1.txt
      - @TARGET@/n2.txt:
        - contents: special
      - @TARGET@/n3.txt
    - contents: common
several tests:
  test.succeed_with_changes:
    - names:
      - alpha
      - beta
