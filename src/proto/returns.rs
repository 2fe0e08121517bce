//! A minion's `_return` load: what a job returned, as Salt's minion and Salt's `salt-call` send
//! it to the master (each with its own fields, in its own order, which the master's
//! `salt/job/<jid>/ret/<id>` event keeps).

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
        user: Option<Value>,
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
        let field = |key: &str, value: Value| (Value::from(key), value);
        let mut entries = vec![
            field("cmd", Value::from("_return")),
            field("id", Value::from(self.id.as_str())),
        ];
        match &self.origin {
            Origin::Job { success, out, user } => {
                entries.push(field("success", Value::Boolean(*success)));
                entries.push(field("return", self.ret.clone()));
                if let Some(out) = out {
                    entries.push(field("out", Value::from(*out)));
                }
                entries.extend([
                    field("retcode", Value::from(self.retcode)),
                    field("jid", Value::from(self.jid.as_str())),
                    field("fun", Value::from(self.fun.as_str())),
                    field("fun_args", self.fun_args.clone()),
                ]);
                if let Some(user) = user {
                    entries.push(field("user", user.clone()));
                }
            }
            Origin::Call { ts, arg } => entries.extend([
                field("jid", Value::from(self.jid.as_str())),
                field("return", self.ret.clone()),
                field("retcode", Value::from(self.retcode)),
                field("fun", Value::from(self.fun.as_str())),
                field("fun_args", self.fun_args.clone()),
                field("ts", Value::from(*ts)),
                field("arg", arg.clone()),
                field("tgt_type", Value::from("glob")),
                field("tgt", Value::from(self.id.as_str())),
            ]),
        }
        Value::Map(entries)
    }
}
