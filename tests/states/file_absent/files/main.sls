@TARGET@/gone.txt:
  file.absent
@TARGET@/gone_dir:
  file.absent
@TARGET@/never_was:
  file.absent
