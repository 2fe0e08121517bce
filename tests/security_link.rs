//! Attacks from the security sweep, each refused: network peers and what minions store on the master.
