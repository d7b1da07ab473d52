//! seccomp filters laid out as a binary search over system call numbers, as libseccomp
//! lays them out at its optimize level 2: seccompiler compares the number with each
//! listed call in turn, so a profile of 350 calls is a 1,500-instruction chain. The
//! kernel runs that chain for every system call, and once more for each of the
//! architecture's call numbers when the filter is installed (to find the calls it may
//! always allow without running the filter): a search tree over ranges of numbers makes
//! each of those runs about ten instructions long. seccompiler still compiles the
//! architecture check and every argument check; only the dispatch on the number is
//! laid out here.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BackendError, BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch,
};

use super::security::SecurityError;

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_JA: u16 = 0x00;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;

/// Where `struct seccomp_data` keeps the call's number.
const SECCOMP_DATA_NR_OFFSET: u32 = 0;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// What a range of call numbers leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Matched,
    Mismatched,
    /// The argument checks of one call.
    Checked(u32),
}

/// The filter seccompiler's `SeccompFilter::new(rules, mismatch, matched, arch)` makes,
/// with the same answer for every call, architecture and argument, but a search tree
/// over the call numbers in place of its chain of comparisons.
pub(crate) fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram, SecurityError> {
    // seccompiler's program for no rules: its architecture check, then the mismatch.
    let empty: BpfProgram =
        SeccompFilter::new(BTreeMap::new(), mismatch.clone(), matched.clone(), arch)?.try_into()?;
    let arch_check = &empty[..empty.len() - 1];
    let mismatch_ret = empty[empty.len() - 1].clone();
    let matched_ret = ret(matched.clone());

    // The number's whole range cut into pieces, each starting at its number.
    let mut pieces: Vec<(u32, Outcome)> = Vec::new();
    let mut checks: BTreeMap<u32, Vec<SeccompRule>> = BTreeMap::new();
    let mut next: u64 = 0;
    for (number, call_rules) in rules {
        let number = u32::try_from(number).map_err(|_| SecurityError::SyscallNumber(number))?;
        if u64::from(number) > next {
            pieces.push((next as u32, Outcome::Mismatched));
        }
        let outcome = if call_rules.is_empty() {
            Outcome::Matched
        } else {
            checks.insert(number, call_rules);
            Outcome::Checked(number)
        };
        // Neighbouring calls with no argument checks share one range.
        let joins = outcome == Outcome::Matched
            && u64::from(number) == next
            && pieces.last().is_some_and(|(_, o)| *o == Outcome::Matched);
        if !joins {
            pieces.push((number, outcome));
        }
        next = u64::from(number) + 1;
    }
    if next <= u64::from(u32::MAX) {
        pieces.push((next as u32, Outcome::Mismatched));
    }

    let mut leaf = |outcome: &Outcome| -> Result<BpfProgram, BackendError> {
        Ok(match outcome {
            Outcome::Matched => vec![matched_ret.clone()],
            Outcome::Mismatched => vec![mismatch_ret.clone()],
            Outcome::Checked(number) => {
                // seccompiler's filter for this call alone, without its architecture
                // check: it loads the number, finds it equal, and runs the checks.
                let call_rules = checks.remove(number).unwrap_or_default();
                let one = [(i64::from(*number), call_rules)].into_iter().collect();
                let program: BpfProgram =
                    SeccompFilter::new(one, mismatch.clone(), matched.clone(), arch)?.try_into()?;
                program[arch_check.len()..].to_vec()
            }
        })
    };
    let mut program = arch_check.to_vec();
    program.push(sock_filter {
        code: BPF_LD | BPF_W | BPF_ABS,
        jt: 0,
        jf: 0,
        k: SECCOMP_DATA_NR_OFFSET,
    });
    program.extend(search(&pieces, &mut leaf)?);
    if program.len() > MAX_INSTRUCTIONS {
        return Err(BackendError::FilterTooLarge(program.len()).into());
    }
    Ok(program)
}

/// The code that finds which of `pieces` the number (in the accumulator) falls in.
fn search(
    pieces: &[(u32, Outcome)],
    leaf: &mut dyn FnMut(&Outcome) -> Result<BpfProgram, BackendError>,
) -> Result<BpfProgram, BackendError> {
    if let [(_, outcome)] = pieces {
        return leaf(outcome);
    }
    let middle = pieces.len() / 2;
    let (below, above) = pieces.split_at(middle);
    let below = search(below, leaf)?;
    let above = search(above, leaf)?;
    let split = pieces[middle].0;
    let mut code = Vec::with_capacity(below.len() + above.len() + 2);
    // At or above the split: jump over the code for the numbers below it.
    match u8::try_from(below.len()) {
        Ok(skip) => code.push(jump(BPF_JGE, split, skip, 0)),
        Err(_) => {
            let skip = u32::try_from(below.len())
                .map_err(|_| BackendError::FilterTooLarge(below.len()))?;
            code.push(jump(BPF_JGE, split, 0, 1));
            code.push(sock_filter {
                code: BPF_JMP | BPF_JA,
                jt: 0,
                jf: 0,
                k: skip,
            });
        }
    }
    code.extend(below);
    code.extend(above);
    Ok(code)
}

fn jump(op: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: BPF_JMP | op | BPF_K,
        jt,
        jf,
        k,
    }
}

fn ret(action: SeccompAction) -> sock_filter {
    sock_filter {
        code: BPF_RET | BPF_K,
        jt: 0,
        jf: 0,
        k: u32::from(action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

    /// What a classic BPF seccomp program answers for one call: the instructions
    /// seccompiler and this module emit, run as the kernel runs them.
    fn run(program: &[sock_filter], arch: u32, number: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&number.to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_ne_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let insn = program[pc].clone();
            pc += 1;
            match insn.code {
                0x20 => {
                    let at = insn.k as usize;
                    a = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                }
                0x54 => a &= insn.k,
                0x06 => return insn.k,
                0x05 => pc += insn.k as usize,
                code if code & 0x07 == BPF_JMP => {
                    let taken = match code & 0xf0 {
                        0x10 => a == insn.k,
                        0x20 => a > insn.k,
                        0x30 => a >= insn.k,
                        0x40 => a & insn.k != 0,
                        other => panic!("unexpected jump {other:#x}"),
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
    }

    fn rules() -> BTreeMap<i64, Vec<SeccompRule>> {
        let condition = |arg, op, value| {
            SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).unwrap()
        };
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        // Runs of neighbours, lone calls, calls with argument checks among them.
        for number in (0..40).chain(50..52).chain([60, 62, 64]).chain(200..330) {
            rules.insert(number, Vec::new());
        }
        rules.insert(
            41,
            vec![SeccompRule::new(vec![condition(0, SeccompCmpOp::Ne, 40)]).unwrap()],
        );
        rules.insert(
            135,
            (0..12u64)
                .map(|p| SeccompRule::new(vec![condition(0, SeccompCmpOp::Eq, p * 8)]).unwrap())
                .collect(),
        );
        rules.insert(
            56,
            vec![
                SeccompRule::new(vec![condition(0, SeccompCmpOp::MaskedEq(0x7e02_0000), 0)])
                    .unwrap(),
            ],
        );
        rules
    }

    #[test]
    fn the_tree_answers_as_the_chain_does() {
        let arch = TargetArch::x86_64;
        for (mismatch, matched) in [
            (SeccompAction::Errno(1), SeccompAction::Allow),
            (SeccompAction::Allow, SeccompAction::Errno(38)),
            (SeccompAction::KillProcess, SeccompAction::Allow),
        ] {
            let chain: BpfProgram =
                SeccompFilter::new(rules(), mismatch.clone(), matched.clone(), arch)
                    .unwrap()
                    .try_into()
                    .unwrap();
            let tree = compile(rules(), mismatch, matched, arch).unwrap();
            assert!(
                tree.len() * 3 < chain.len(),
                "{} against {}",
                tree.len(),
                chain.len()
            );
            let numbers = (0..1100).chain([0x4000_0000, 0x4000_0001, u32::MAX - 1, u32::MAX]);
            for number in numbers {
                for arg in [0, 8, 16, 40, 41, 0x1_0000_0000, 0x7e02_0000, 0x0002_0000] {
                    let args = [arg, 0, 0, 0, 0, 0];
                    for audit_arch in [0xC000_003E, 0x4000_0003] {
                        assert_eq!(
                            run(&tree, audit_arch, number, args),
                            run(&chain, audit_arch, number, args),
                            "call {number}, argument {arg:#x}, arch {audit_arch:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dockers_allow_list_answers_as_before() {
        let rules = super::super::security::allow_rules().unwrap();
        let (mismatch, matched) = (SeccompAction::Errno(1), SeccompAction::Allow);
        let arch = TargetArch::x86_64;
        let chain: BpfProgram =
            SeccompFilter::new(rules.clone(), mismatch.clone(), matched.clone(), arch)
                .unwrap()
                .try_into()
                .unwrap();
        let tree = compile(rules, mismatch, matched, arch).unwrap();
        assert!(
            tree.len() * 4 < chain.len(),
            "{} against {}",
            tree.len(),
            chain.len()
        );
        for number in (0..1100).chain([0x4000_0000 + 39, u32::MAX]) {
            // clone's namespace flags, socket's AF_VSOCK, personality's values.
            for arg in [
                0,
                0x1_0000,
                0x2000_0000,
                0x7e02_0000,
                8,
                40,
                41,
                0xffff_ffff,
            ] {
                let args = [arg, 0, 0, 0, 0, 0];
                assert_eq!(
                    run(&tree, 0xC000_003E, number, args),
                    run(&chain, 0xC000_003E, number, args),
                    "call {number}, argument {arg:#x}"
                );
            }
        }
    }

    #[test]
    fn long_branches_jump_far() {
        // Every other number, each with a check: the code below a split outgrows a
        // one-byte jump.
        let condition =
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 7).unwrap();
        let rules: BTreeMap<i64, Vec<SeccompRule>> = (0..300)
            .map(|n| {
                (
                    n * 2,
                    vec![SeccompRule::new(vec![condition.clone()]).unwrap()],
                )
            })
            .take(200)
            .collect();
        let arch = TargetArch::x86_64;
        let chain: BpfProgram = SeccompFilter::new(
            rules.clone(),
            SeccompAction::Errno(1),
            SeccompAction::Allow,
            arch,
        )
        .unwrap()
        .try_into()
        .unwrap();
        let tree = compile(rules, SeccompAction::Errno(1), SeccompAction::Allow, arch).unwrap();
        for number in 0..500 {
            for arg in [0, 7] {
                let args = [0, arg, 0, 0, 0, 0];
                assert_eq!(
                    run(&tree, 0xC000_003E, number, args),
                    run(&chain, 0xC000_003E, number, args),
                    "call {number}"
                );
            }
        }
    }
}
