greet:
  file.managed:
    - name: @TARGET@/greeting.txt
    - contents: {{ pillar['greeting'] }} / {{ pillar.get('extra', 'none') }}
