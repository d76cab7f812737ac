//! Writes the mutants of a sample that the reference findings are made for:
//! `mutants SAMPLE FIRST COUNT OUTDIR` writes `OUTDIR/<seed>.xml` for seeds FIRST..FIRST+COUNT.
//! Used by `tests/reference/make.sh`; see its header.

#[path = "../tests/support/mutate.rs"]
mod mutate;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, sample, first, count, out] = args.as_slice() else {
        return Err("usage: mutants SAMPLE FIRST COUNT OUTDIR".into());
    };
    let sample = std::fs::read_to_string(sample)?;
    let first: u64 = first.parse()?;
    let count: u64 = count.parse()?;
    std::fs::create_dir_all(out)?;
    for seed in first..first + count {
        std::fs::write(format!("{out}/{seed:05}.xml"), mutate::mutant(&sample, seed))?;
    }
    eprintln!("{count} mutants written to {out}");
    Ok(())
}
