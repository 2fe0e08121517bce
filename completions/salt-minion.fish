complete -c salt-minion -s c -l config-dir -d 'Directory holding the `master` / `minion` config files [default: /etc/salt]' -r -F
complete -c salt-minion -s l -l log-level -d 'Console log level: quiet, critical, error, warning, info, debug, trace, garbage, all' -r
complete -c salt-minion -l generate -d 'Write a man page or shell completion script to stdout and exit' -r -f -a "man\t'A roff man page'
bash\t'Bash completion'
zsh\t'Zsh completion'
fish\t'Fish completion'"
complete -c salt-minion -l log-file -d 'Log file path [default: the config\'s log_file (salt-api: api_logfile), or /var/log/salt/<daemon>]' -r -F
complete -c salt-minion -l log-file-level -d 'Log level of the log file [default: the config\'s log_level_logfile, or warning]' -r
complete -c salt-minion -l pid-file -d 'Write the process id to this file [default: the config\'s pidfile (salt-api: api_pidfile)]' -r -F
complete -c salt-minion -l swarm -d 'Run N minions in this process, to load a master: ids <id>-0 to <id>-<N-1>, each with its own key (in <pki_dir>/swarm/), session and grains, answering jobs; no event bus, beacons, schedule or reactor' -r
complete -c salt-minion -l version -d 'Print the version and exit'
complete -c salt-minion -s V -l versions-report -d 'Print the versions of halite and the system, in Salt\'s report layout, and exit'
complete -c salt-minion -s d -l daemon -d 'Run in the background'
complete -c salt-minion -l check-config -d 'Check the configuration as a start would (YAML, includes, option values, log levels, the user, TLS files), and the reactor\'s files, and exit: 0 when it is sound, 1 with each problem on stderr (unknown options and includes that match nothing count)'
complete -c salt-minion -s h -l help -d 'Print help (see more with \'--help\')'
