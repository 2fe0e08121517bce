complete -c salt -s c -l config-dir -d 'Directory holding the `master` / `minion` config files [default: /etc/salt]' -r -F
complete -c salt -s l -l log-level -d 'Console log level: quiet, critical, error, warning, info, debug, trace, garbage, all' -r
complete -c salt -l generate -d 'Write a man page or shell completion script to stdout and exit' -r -f -a "man\t'A roff man page'
bash\t'Bash completion'
zsh\t'Zsh completion'
fish\t'Fish completion'"
complete -c salt -l out -l output -d 'Outputter for the return: nested, json, yaml, txt, raw, quiet, highstate [default: the one the return names, else nested]' -r
complete -c salt -l state-output -l state_output -d 'How the highstate outputter shows each state: full, terse, mixed or changes (each optionally with _id) [default: the config\'s state_output, full]' -r
complete -c salt -l state-verbose -l state_verbose -d 'Whether the highstate outputter shows states that succeeded without changes [default: the config\'s state_verbose, True]' -r -f -a "True\t''
true\t''
False\t''
false\t''"
complete -c salt -l out-indent -l output-indent -d 'Indent json and yaml output N spaces a level; a negative N prints json on one line and yaml in flow style [default: the config\'s output_indent, else json 4, yaml 2]' -r
complete -c salt -l out-file -l output-file -d 'Write the returns to FILE instead of stdout, emptying it first (uncoloured unless --force-color)' -r -F
complete -c salt -l return -d 'Also hand each return to these returners (comma-separated), e.g. mysql,rawfile_json' -r
complete -c salt -l return_config -d 'The profile the returners read their options under: <PROFILE>.<returner>.<option>' -r
complete -c salt -l return_kwargs -d 'Options over the returners\' own, a YAML map, e.g. \'{db: jobs}\'' -r
complete -c salt -l no-parse -d 'Keyword arguments (comma-separated names) whose values stay the text given instead of being read as YAML, e.g. --no-parse=password for password=0123' -r
complete -c salt -s b -l batch -d 'Run on this many minions at a time, or this percentage of them (10 or 10%); the minions are pinged first' -r
complete -c salt -l batch-wait -d 'Seconds to wait after a minion returns before the next one takes its place in the batch' -r
complete -c salt -s t -l timeout -d 'Seconds to wait for returns before asking minions whether they still run the job [default: the master\'s timeout, 5]' -r
complete -c salt -l version -d 'Print the version and exit'
complete -c salt -s V -l versions-report -d 'Print the versions of halite and the system, in Salt\'s report layout, and exit'
complete -c salt -l no-color -l no-colour -d 'Never colour the output'
complete -c salt -l force-color -l force-colour -d 'Colour the output even when it is not a terminal'
complete -c salt -l out-file-append -l output-file-append -d 'With --out-file: add to the end of FILE instead of emptying it'
complete -c salt -s E -l pcre -d 'The target is a regular expression matched from the start of the id'
complete -c salt -s L -l list -d 'The target is a comma-separated list of ids'
complete -c salt -s G -l grain -d 'The target is grain:glob (nested keys joined with \':\')'
complete -c salt -s P -l grain-pcre -d 'The target is grain:regex (nested keys joined with \':\')'
complete -c salt -s C -l compound -d 'The target is a compound expression: globs, G@, P@, I@, J@, S@, L@, E@ and N@ words joined by and, or, not and parentheses'
complete -c salt -s I -l pillar -d 'The target is pillar:glob (nested keys joined with \':\')'
complete -c salt -s J -l pillar-pcre -d 'The target is pillar:regex (nested keys joined with \':\')'
complete -c salt -s S -l ipcidr -d 'The target is an IP address or network (10.0.0.0/24) in the minions\' ipv4/ipv6 grains'
complete -c salt -s N -l nodegroup -d 'The target is a node group named in the master\'s nodegroups option'
complete -c salt -l failhard -d 'Stop the batch at the first minion that returns a non-zero retcode'
complete -c salt -l async -d 'Publish and print the job id without waiting for returns'
complete -c salt -s v -l verbose -d 'Print the job id before the returns'
complete -c salt -l show-jid -d 'Print `jid: <jid>` before the returns'
complete -c salt -l hide-timeout -d 'Leave minions that did not return out of the output'
complete -c salt -l static -d 'Print the returns together, once every minion returned or timed out'
complete -c salt -s h -l help -d 'Print help'
