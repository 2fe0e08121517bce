@TARGET@/nope.txt:
  file.managed:
    - source: salt://does/not/exist.txt
after it:
  test.succeed_without_changes:
    - require:
      - file: @TARGET@/nope.txt
