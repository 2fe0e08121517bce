@TARGET@/deep/er/app.conf:
  file.managed:
    - source: salt://app.conf
    - mode: "0640"
    - makedirs: True
@TARGET@/plain.txt:
  file.managed:
    - source: salt://app.conf
