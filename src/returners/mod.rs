//! Where jobs and their returns are kept: Salt's returners. The master keeps every job in
//! [`local_cache`], Salt's default job cache.

pub mod local_cache;
