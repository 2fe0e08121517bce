@TARGET@/link:
  file.symlink:
    - target: @TARGET@/dest.txt
@TARGET@/right:
  file.symlink:
    - target: dest.txt
@TARGET@/blocker:
  file.symlink:
    - target: @TARGET@/dest.txt
