complete -c salt-run -s c -l config-dir -d 'Directory holding the `master` / `minion` config files [default: /etc/salt]' -r -F
complete -c salt-run -s l -l log-level -d 'Console log level: quiet, critical, error, warning, info, debug, trace, garbage, all' -r
complete -c salt-run -l generate -d 'Write a man page or shell completion script to stdout and exit' -r -f -a "man\t'A roff man page'
bash\t'Bash completion'
zsh\t'Zsh completion'
fish\t'Fish completion'"
complete -c salt-run -l out -l output -d 'Outputter for the return: nested, json, yaml, txt, raw, quiet, highstate [default: the one the return names, else nested]' -r
complete -c salt-run -l state-output -l state_output -d 'How the highstate outputter shows each state: full, terse, mixed or changes (each optionally with _id) [default: the config\'s state_output, full]' -r
complete -c salt-run -l state-verbose -l state_verbose -d 'Whether the highstate outputter shows states that succeeded without changes [default: the config\'s state_verbose, True]' -r -f -a "True\t''
true\t''
False\t''
false\t''"
complete -c salt-run -l out-indent -l output-indent -d 'Indent json and yaml output N spaces a level; a negative N prints json on one line and yaml in flow style [default: the config\'s output_indent, else json 4, yaml 2]' -r
complete -c salt-run -l out-file -l output-file -d 'Write the returns to FILE instead of stdout, emptying it first (uncoloured unless --force-color)' -r -F
complete -c salt-run -l no-parse -d 'Keyword arguments (comma-separated names) whose values stay the text given instead of being read as YAML, e.g. --no-parse=password for password=0123' -r
complete -c salt-run -l version -d 'Print the version and exit'
complete -c salt-run -s V -l versions-report -d 'Print the versions of halite and the system, in Salt\'s report layout, and exit'
complete -c salt-run -l no-color -l no-colour -d 'Never colour the output'
complete -c salt-run -l force-color -l force-colour -d 'Colour the output even when it is not a terminal'
complete -c salt-run -l out-file-append -l output-file-append -d 'With --out-file: add to the end of FILE instead of emptying it'
complete -c salt-run -s h -l help -d 'Print help'
complete -c salt-run -n __fish_is_first_arg -f -a 'state.event' -d 'Prints a bus\'s events as they arrive, as Salt\'s state.event does'
complete -c salt-run -n __fish_is_first_arg -f -a 'event.bench' -d 'Load-tests a bus speaking Salt\'s protocol, or the reference relay'
complete -c salt-run -n __fish_is_first_arg -f -a 'reactor.dry_run' -d 'What the reactor would do for an event, without doing it'
complete -c salt-run -n __fish_is_first_arg -f -a 'event.send' -d 'Fires an event on the master\'s bus'
complete -c salt-run -n __fish_is_first_arg -f -a 'http.query' -d 'One HTTP request (Salt\'s webhook runner): body, and status, headers or error'
complete -c salt-run -n __fish_is_first_arg -f -a 'jobs.active' -d 'The jobs minions run now, asked of every minion'
complete -c salt-run -n __fish_is_first_arg -f -a 'jobs.list_job' -d 'One job from the job cache: function, arguments, target, user, start time and each minion\'s return'
complete -c salt-run -n __fish_is_first_arg -f -a 'jobs.list_jobs' -d 'The jobs in the job cache: function, arguments, target, user, start time'
complete -c salt-run -n __fish_is_first_arg -f -a 'jobs.lookup_jid' -d 'The returns the job cache holds for a job, per minion'
complete -c salt-run -n __fish_is_first_arg -f -a 'jobs.print_job' -d 'One job from the job cache, under its jid, with each minion\'s return'
complete -c salt-run -n __fish_is_first_arg -f -a 'reactor.list' -d 'The running master\'s reactor configuration'
complete -c salt-run -n __fish_is_first_arg -f -a 'ret.get_fun' -d 'Each minion\'s latest return of a function a returner stored'
complete -c salt-run -n __fish_is_first_arg -f -a 'ret.get_jid' -d 'The returns a returner stored for a job, per minion'
complete -c salt-run -n __fish_is_first_arg -f -a 'ret.get_jids' -d 'The jobs a returner stored, with their loads'
complete -c salt-run -n __fish_is_first_arg -f -a 'ret.get_minions' -d 'The minions a returner stored returns of'
complete -c salt-run -n __fish_is_first_arg -f -a 'ret.stats' -d 'What the running master\'s returners stored, spooled and dropped'
complete -c salt-run -n __fish_is_first_arg -f -a 'test.arg' -d 'What the runner was given: its positional and keyword arguments'
complete -c salt-run -n __fish_is_first_arg -f -a 'test.sleep' -d 'Sleeps s_time seconds (10 by default), then True'
