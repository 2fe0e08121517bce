halitecase:
  group.present:
    - gid: 45678
  user.present:
    - uid: 45678
    - gid: 45678
    - home: @TARGET@/home
    - require:
      - group: halitecase
