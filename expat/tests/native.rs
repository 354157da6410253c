//! With the `native` feature, the crate's own native expat (shared object
//! and stubs) parses exactly as its embedded, sandboxed one.
#![cfg(feature = "native")]

use sandlink::{Dynamic, Foreign, Stubs};
use sandlink_expat::{Event, Expat, Flow, Handler, OwnedEvent, Parser};

struct Record(Vec<OwnedEvent>);

impl Handler for Record {
    fn handle(&mut self, e: Event<'_>) -> Flow {
        match e.into_owned() {
            Ok(e) => {
                self.0.push(e);
                Flow::Continue
            }
            Err(_) => Flow::Abort,
        }
    }
}

const DOC: &[u8] = b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e 'ent'>]>\
<d a='1'><x>&e;</x><!--c--><?pi data?><![CDATA[<raw>]]></d>";

fn events<L: Foreign>(expat: &Expat<L>) -> Vec<OwnedEvent> {
    let mut p = Parser::new(expat, Record(Vec::new())).unwrap_or_else(|e| panic!("{e}"));
    p.parse(DOC).unwrap_or_else(|e| panic!("{e}"));
    p.into_handler().unwrap_or_else(|e| panic!("{e}")).0
}

#[test]
fn native_builds_parse_as_the_embedded_module() {
    let sandboxed = events(&sandlink_expat::sandboxed().unwrap_or_else(|e| panic!("{e}")));
    assert!(sandboxed.len() > 5, "{sandboxed:?}");
    // SAFETY: expat 2.5.0 as this crate built it.
    let dynamic =
        unsafe { Dynamic::open(sandlink_expat::SHARED_OBJECT) }.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        events(&Expat::bind(&dynamic).unwrap_or_else(|e| panic!("{e}"))),
        sandboxed
    );
    // SAFETY: the stubs this crate generated and checked against expat.h.
    let stubs = unsafe { Stubs::open(sandlink_expat::stubs::stub_table()) }
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        events(&Expat::bind(&stubs).unwrap_or_else(|e| panic!("{e}"))),
        sandboxed
    );
}
