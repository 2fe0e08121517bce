cron:
  service.running:
    - enable: True
atd:
  service.dead
