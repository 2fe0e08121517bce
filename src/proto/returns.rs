//! A minion's `_return` load: what a job returned, as Salt's minion and Salt's `salt-call` send
//! it to the master (each with its own fields, in its own order, which the master's
//! `salt/job/<jid>/ret/<id>` event keeps, as Salt's master fires a return as it arrived).

use super::entry;
use crate::event::Value;

/// What a job returned, for the master.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnLoad {
    /// The minion.
    pub id: String,
    /// The job's id; `req` from `salt-call`, for which the master allocates one.
    pub jid: String,
    /// What the function returned.
    pub ret: Value,
    /// The job's return code.
    pub retcode: i64,
    /// The function.
    pub fun: String,
    /// Its arguments as the job gave them.
    pub fun_args: Value,
    /// Who ran it, and what that adds.
    pub origin: Origin,
}

/// Who ran the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A job the master published.
    Job {
        /// Whether it succeeded (`retcode == 0`).
        success: bool,
        /// Salt's outputter hint for an error return (`nested`).
        out: Option<&'static str>,
        /// The publisher, when the job named one.
        user: Option<String>,
    },
    /// `salt-call` on the minion.
    Call {
        /// When it ran (Unix seconds).
        ts: i64,
        /// Its arguments in the publish load's form.
        arg: Value,
    },
}

impl ReturnLoad {
    /// The load, in Salt's field order for its origin.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![entry("cmd", "_return"), entry("id", self.id.as_str())];
        match &self.origin {
            Origin::Job { success, out, user } => {
                entries.push(entry("success", *success));
                entries.push(entry("return", self.ret.clone()));
                if let Some(out) = out {
                    entries.push(entry("out", *out));
                }
                entries.extend([
                    entry("retcode", self.retcode),
                    entry("jid", self.jid.as_str()),
                    entry("fun", self.fun.as_str()),
                    entry("fun_args", self.fun_args.clone()),
                ]);
                if let Some(user) = user {
                    entries.push(entry("user", user.as_str()));
                }
            }
            Origin::Call { ts, arg } => entries.extend([
                entry("jid", self.jid.as_str()),
                entry("return", self.ret.clone()),
                entry("retcode", self.retcode),
                entry("fun", self.fun.as_str()),
                entry("fun_args", self.fun_args.clone()),
                entry("ts", *ts),
                entry("arg", arg.clone()),
                entry("tgt_type", "glob"),
                entry("tgt", self.id.as_str()),
            ]),
        }
        Value::Map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::golden;
    use super::*;
    use crate::event::map_get;

    /// The returns real Salt's minion (jobs) and `salt-call` sent, as the master fired them: a
    /// job's return gets the time it arrived (`ts`) last, `salt-call`'s brings its own.
    #[test]
    fn returns_keep_salts_field_order_for_each_origin() {
        for captured in golden(|tag| tag.contains("/ret/")) {
            let field = |key| map_get(&captured, key).unwrap();
            let text = |key| field(key).as_str().unwrap().to_owned();
            let retcode = field("retcode").as_i64().unwrap();
            let from_job = map_get(&captured, "success").is_some();
            let load = ReturnLoad {
                id: text("id"),
                jid: text("jid"),
                ret: field("return").clone(),
                retcode,
                fun: text("fun"),
                fun_args: field("fun_args").clone(),
                origin: if from_job {
                    Origin::Job {
                        success: retcode == 0,
                        out: None,
                        user: Some(text("user")),
                    }
                } else {
                    Origin::Call {
                        ts: field("ts").as_i64().unwrap(),
                        arg: field("arg").clone(),
                    }
                },
            };
            let Value::Map(mut sent) = load.to_value() else {
                panic!("a map")
            };
            if from_job {
                sent.push(entry("ts", field("ts").clone()));
            }
            assert_eq!(Value::Map(sent), captured);
        }
    }
}
