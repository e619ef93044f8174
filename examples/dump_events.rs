//! Prints granit-parser events with byte ranges: a debugging aid for the edit engine.
use granit_parser::{Options, Parser};
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump_events FILE");
    let src = std::fs::read_to_string(path).unwrap();
    let mut opts = Options::default();
    opts.emit_anchor_events = true;
    let parser = Parser::new_from_str_with_options(&src, opts);
    for ev in parser {
        match ev {
            Ok((e, s)) => {
                let r = s.byte_range();
                let txt = r.clone().map(|r| src[r].to_string()).unwrap_or_default();
                println!(
                    "{:?} {:?} indent={:?} L{}C{} {:?}",
                    e,
                    r,
                    s.indent,
                    s.start.line(),
                    s.start.col(),
                    txt
                );
            }
            Err(e) => {
                println!("ERR {e}");
                break;
            }
        }
    }
}
