//! A seccomp filter as classic BPF: the architecture first (any other is refused, and on x86_64 the
//! x32 numbers too, which would otherwise be a second table of the same calls), then a binary search
//! on the system call number, then, for a call with conditions, its rules in order. Conditional jumps
//! only ever skip the next instruction, which is an unconditional jump (32-bit offset) where a
//! target is far: the program can be of any size up to the kernel's 4096 instructions.

use std::collections::BTreeMap;

pub use crate::sys::seccomp::Insn;

// The instruction codes (linux/bpf_common.h): class | size or operation | source.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
const ALU_AND_K: u16 = BPF_ALU | 0x50 | BPF_K;
const JMP_JA: u16 = BPF_JMP;
const JMP_JEQ_K: u16 = BPF_JMP | 0x10 | BPF_K;
const JMP_JGT_K: u16 = BPF_JMP | 0x20 | BPF_K;
const JMP_JGE_K: u16 = BPF_JMP | 0x30 | BPF_K;
const RET_K: u16 = BPF_RET | BPF_K;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg_low(index: u8) -> u32 {
    16 + 8 * index as u32
}

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Set in the number of every x32 system call.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The most instructions the kernel takes (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// What a system call gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Errno(u16),
    KillProcess,
    KillThread,
    Trap,
    Log,
}

impl Action {
    /// The filter's return value (SECCOMP_RET_*).
    pub fn value(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno(errno) => 0x0005_0000 | u32::from(errno),
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Log => 0x7ffc_0000,
        }
    }
}

/// A comparison of one argument (64 bits) with `value`, as libseccomp's SCMP_CMP_*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// (argument & mask) == value.
    MaskedEq(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Condition {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
}

/// `action` when every condition holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// What one system call gets: the first rule whose conditions hold, else `otherwise`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    pub rules: Vec<Rule>,
    pub otherwise: Action,
}

/// The filter for one architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arch {
    pub audit_arch: u32,
    /// Sorted by number, each once; a call that is not here gets the filter's default.
    pub syscalls: Vec<(u32, Syscall)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub arches: Vec<Arch>,
    /// For a call that no arch lists.
    pub default: Action,
    /// For a call of another architecture, and for x32 calls.
    pub other_arch: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Label(usize);

enum Piece {
    Insn(Insn),
    /// An unconditional jump to a label.
    Jump(Label),
    /// A conditional jump to one of two labels: one instruction when both are within reach of
    /// its 8-bit offsets, else three (the condition, then an unconditional jump to each).
    Branch {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Here(Label),
}

struct Emitter {
    pieces: Vec<Piece>,
    labels: usize,
    /// One shared `ret` per action.
    returns: BTreeMap<Action, Label>,
}

impl Emitter {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn insn(&mut self, code: u16, k: u32) {
        self.pieces.push(Piece::Insn(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    fn load(&mut self, offset: u32) {
        self.insn(LD_W_ABS, offset);
    }

    fn ret(&mut self, action: Action) {
        self.insn(RET_K, action.value());
    }

    fn here(&mut self, label: Label) {
        self.pieces.push(Piece::Here(label));
    }

    fn jump(&mut self, label: Label) {
        self.pieces.push(Piece::Jump(label));
    }

    fn branch(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.pieces.push(Piece::Branch { code, k, jt, jf });
    }

    /// Jumps to `target` when `A <jump> k` holds (`when` true) or does not hold (`when` false).
    fn jump_if(&mut self, jump: u16, k: u32, when: bool, target: Label) {
        let next = self.label();
        match when {
            true => self.branch(jump, k, target, next),
            false => self.branch(jump, k, next, target),
        }
        self.here(next);
    }

    fn return_of(&mut self, action: Action) -> Label {
        if let Some(label) = self.returns.get(&action) {
            return *label;
        }
        let label = self.label();
        self.returns.insert(action, label);
        label
    }

    /// Falls through when `condition` holds, else jumps to `fail`.
    fn condition(&mut self, c: &Condition, fail: Label) {
        let (high, low) = ((c.value >> 32) as u32, c.value as u32);
        let (high_at, low_at) = (arg_low(c.arg) + 4, arg_low(c.arg));
        match c.op {
            Op::Eq => {
                self.load(high_at);
                self.jump_if(JMP_JEQ_K, high, false, fail);
                self.load(low_at);
                self.jump_if(JMP_JEQ_K, low, false, fail);
            }
            Op::Ne => {
                let pass = self.label();
                self.load(high_at);
                self.jump_if(JMP_JEQ_K, high, false, pass);
                self.load(low_at);
                self.jump_if(JMP_JEQ_K, low, true, fail);
                self.here(pass);
            }
            Op::MaskedEq(mask) => {
                self.load(high_at);
                self.insn(ALU_AND_K, (mask >> 32) as u32);
                self.jump_if(JMP_JEQ_K, high, false, fail);
                self.load(low_at);
                self.insn(ALU_AND_K, mask as u32);
                self.jump_if(JMP_JEQ_K, low, false, fail);
            }
            Op::Gt | Op::Ge => {
                let pass = self.label();
                self.load(high_at);
                self.jump_if(JMP_JGT_K, high, true, pass);
                self.jump_if(JMP_JEQ_K, high, false, fail);
                self.load(low_at);
                let jump = if c.op == Op::Gt { JMP_JGT_K } else { JMP_JGE_K };
                self.jump_if(jump, low, false, fail);
                self.here(pass);
            }
            Op::Lt | Op::Le => {
                let pass = self.label();
                self.load(high_at);
                self.jump_if(JMP_JGT_K, high, true, fail);
                self.jump_if(JMP_JEQ_K, high, false, pass);
                self.load(low_at);
                // Lt fails where Ge holds, Le where Gt holds.
                let jump = if c.op == Op::Lt { JMP_JGE_K } else { JMP_JGT_K };
                self.jump_if(jump, low, true, fail);
                self.here(pass);
            }
        }
    }

    /// With the number in A: a binary search over `ranges` (each from its number up to the next
    /// one's, the first from 0, sorted) to the target of the range the number is in, one
    /// instruction per comparison.
    fn search(&mut self, ranges: &[(u32, Label)]) {
        if let [(_, target)] = ranges {
            self.jump(*target);
            return;
        }
        let (lower, upper) = ranges.split_at(ranges.len() / 2);
        // A half of one range is its target; a larger half gets code of its own after this.
        let mut side = |half: &[(u32, Label)]| match half {
            [(_, target)] => (*target, false),
            _ => (self.label(), true),
        };
        let (lower_at, lower_code) = side(lower);
        let (upper_at, upper_code) = side(upper);
        self.branch(JMP_JGE_K, upper[0].0, upper_at, lower_at);
        for (at, code, half) in [(lower_at, lower_code, lower), (upper_at, upper_code, upper)] {
            if code {
                self.here(at);
                self.search(half);
            }
        }
    }

    fn finish(mut self) -> Vec<Insn> {
        for (action, label) in std::mem::take(&mut self.returns) {
            self.here(label);
            self.ret(action);
        }
        // Branches start short; one whose target is out of reach becomes long, which moves what
        // follows, so until nothing changes (branches only ever grow: this ends).
        let mut long = vec![false; self.pieces.len()];
        let mut at = vec![0usize; self.labels];
        loop {
            let mut pc = 0;
            for (i, piece) in self.pieces.iter().enumerate() {
                match piece {
                    Piece::Here(label) => at[label.0] = pc,
                    Piece::Branch { .. } if long[i] => pc += 3,
                    _ => pc += 1,
                }
            }
            let mut grew = false;
            let mut pc = 0;
            // Positions as `at` has them: a branch made long now moves things in the next pass.
            let sized = long.clone();
            for (i, piece) in self.pieces.iter().enumerate() {
                match piece {
                    Piece::Here(_) => continue,
                    Piece::Branch { jt, jf, .. } if !long[i] => {
                        let reach = |label: &Label| at[label.0] - (pc + 1) <= u8::MAX as usize;
                        if !reach(jt) || !reach(jf) {
                            long[i] = true;
                            grew = true;
                        }
                    }
                    _ => {}
                }
                pc += if sized[i] { 3 } else { 1 };
            }
            if !grew {
                break;
            }
        }
        let mut program = Vec::with_capacity(self.pieces.len());
        let offset = |program: &Vec<Insn>, label: Label| at[label.0] - (program.len() + 1);
        for (i, piece) in self.pieces.into_iter().enumerate() {
            match piece {
                Piece::Insn(insn) => program.push(insn),
                Piece::Jump(label) => {
                    let k = offset(&program, label) as u32;
                    program.push(Insn {
                        code: JMP_JA,
                        jt: 0,
                        jf: 0,
                        k,
                    });
                }
                Piece::Branch { code, k, jt, jf } if !long[i] => {
                    let (jt, jf) = (offset(&program, jt) as u8, offset(&program, jf) as u8);
                    program.push(Insn { code, jt, jf, k });
                }
                Piece::Branch { code, k, jt, jf } => {
                    program.push(Insn {
                        code,
                        jt: 0,
                        jf: 1,
                        k,
                    });
                    for label in [jt, jf] {
                        let k = offset(&program, label) as u32;
                        program.push(Insn {
                            code: JMP_JA,
                            jt: 0,
                            jf: 0,
                            k,
                        });
                    }
                }
                Piece::Here(_) => {}
            }
        }
        program
    }
}

/// The numbers from 0 up as ranges of one target each: each of `targets` (sorted by number), the gaps
/// between them `default`, and from `end`'s number its target; neighbours with the same target are
/// one range. Most calls share a few actions, so the search is over far fewer ranges than calls.
fn ranges(
    targets: &[(u32, Label)],
    default: Label,
    end: Option<(u32, Label)>,
) -> Vec<(u32, Label)> {
    let mut ranges: Vec<(u32, Label)> = Vec::new();
    let mut push = |start: u32, target: Label| {
        if ranges.last().is_none_or(|(_, last)| *last != target) {
            ranges.push((start, target));
        }
    };
    let mut next = Some(0u32);
    for &(nr, target) in targets {
        if next.is_some_and(|n| n < nr) {
            push(next.unwrap_or(0), default);
        }
        push(nr, target);
        next = nr.checked_add(1);
    }
    if let Some(n) = next
        && end.is_none_or(|(at, _)| n < at)
    {
        push(n, default);
    }
    if let Some((at, target)) = end {
        push(at, target);
    }
    ranges
}

/// The program for `filter`. Every jump goes forward, as the kernel requires.
pub fn compile(filter: &Filter) -> Vec<Insn> {
    let calls: usize = filter.arches.iter().map(|a| a.syscalls.len()).sum();
    let mut e = Emitter {
        pieces: Vec::with_capacity(4 * calls),
        labels: 0,
        returns: BTreeMap::new(),
    };
    let arch_labels: Vec<Label> = filter.arches.iter().map(|_| e.label()).collect();
    e.load(ARCH);
    for (arch, label) in filter.arches.iter().zip(&arch_labels) {
        e.jump_if(JMP_JEQ_K, arch.audit_arch, true, *label);
    }
    e.ret(filter.other_arch);
    let mut leaves = Vec::new();
    for (arch, label) in filter.arches.iter().zip(&arch_labels) {
        e.here(*label);
        e.load(NR);
        let default = e.return_of(filter.default);
        let mut targets = Vec::with_capacity(arch.syscalls.len());
        for (nr, syscall) in &arch.syscalls {
            let target = match syscall.rules.is_empty() {
                true => e.return_of(syscall.otherwise),
                false => {
                    let leaf = e.label();
                    leaves.push((leaf, syscall));
                    leaf
                }
            };
            targets.push((*nr, target));
        }
        // x32's numbers, refused: past every x86_64 number.
        let end = (arch.audit_arch == AUDIT_ARCH_X86_64)
            .then(|| (X32_SYSCALL_BIT, e.return_of(filter.other_arch)));
        e.search(&ranges(&targets, default, end));
    }
    for (leaf, syscall) in leaves {
        e.here(leaf);
        for rule in &syscall.rules {
            let next = e.label();
            for condition in &rule.conditions {
                e.condition(condition, next);
            }
            e.ret(rule.action);
            e.here(next);
        }
        e.ret(syscall.otherwise);
    }
    e.finish()
}

/// What `program` returns for a system call: a classic BPF interpreter of the instructions
/// `compile` emits, for tests.
#[cfg(test)]
pub fn run(program: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let insn = program[pc];
        pc += 1;
        let k = insn.k;
        let taken = |cond: bool| if cond { insn.jt } else { insn.jf } as usize;
        match insn.code {
            LD_W_ABS => {
                let at = k as usize;
                a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            }
            ALU_AND_K => a &= k,
            JMP_JA => pc += k as usize,
            JMP_JEQ_K => pc += taken(a == k),
            JMP_JGT_K => pc += taken(a > k),
            JMP_JGE_K => pc += taken(a >= k),
            RET_K => return k,
            other => panic!("instruction {other:#x} is not one compile emits"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPERM: u16 = 1;
    const ENOSYS: u16 = 38;

    fn plain(action: Action) -> Syscall {
        Syscall {
            rules: Vec::new(),
            otherwise: action,
        }
    }

    fn filter(calls: Vec<(u32, Syscall)>) -> Filter {
        Filter {
            arches: vec![Arch {
                audit_arch: AUDIT_ARCH_X86_64,
                syscalls: calls.into_iter().collect(),
            }],
            default: Action::Errno(ENOSYS),
            other_arch: Action::Errno(EPERM),
        }
    }

    fn decide(program: &[Insn], nr: u32, args: [u64; 6]) -> u32 {
        run(program, AUDIT_ARCH_X86_64, nr, args)
    }

    #[test]
    fn every_number_gets_its_own_action_and_the_rest_the_default() {
        // Many calls, so that the search is deep and the jumps long.
        let calls: Vec<(u32, Syscall)> = (0..500)
            .filter(|n| n % 3 != 0)
            .map(|n| {
                let action = if n % 2 == 0 {
                    Action::Allow
                } else {
                    Action::Errno(EPERM)
                };
                (n, plain(action))
            })
            .collect();
        let program = compile(&filter(calls.clone()));
        assert!(program.len() < MAX_INSNS, "{}", program.len());
        // Far enough apart that some branches need the long form.
        assert!(program.iter().any(|insn| insn.code == JMP_JA));
        for n in 0..600 {
            let expected = match calls.iter().find(|(nr, _)| *nr == n) {
                Some((_, s)) => s.otherwise,
                None => Action::Errno(ENOSYS),
            };
            assert_eq!(decide(&program, n, [0; 6]), expected.value(), "call {n}");
        }
    }

    #[test]
    fn other_architectures_and_x32_numbers_are_refused() {
        let program = compile(&filter(vec![(1, plain(Action::Allow))]));
        assert_eq!(decide(&program, 1, [0; 6]), Action::Allow.value());
        // x32's write is 1 with the x32 bit, under AUDIT_ARCH_X86_64.
        assert_eq!(
            decide(&program, 1 | X32_SYSCALL_BIT, [0; 6]),
            Action::Errno(EPERM).value()
        );
        assert_eq!(
            run(&program, AUDIT_ARCH_I386, 1, [0; 6]),
            Action::Errno(EPERM).value()
        );
        assert_eq!(
            run(&program, 0xc000_00b7, 1, [0; 6]),
            Action::Errno(EPERM).value()
        );
    }

    #[test]
    fn conditions_compare_all_64_bits() {
        let values = [
            0u64,
            1,
            5,
            6,
            7,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0005,
            0x2_0000_0000,
            u64::MAX,
        ];
        let ops = [
            (Op::Eq, 0x1_0000_0005u64),
            (Op::Ne, 0x1_0000_0005),
            (Op::Lt, 0x1_0000_0005),
            (Op::Le, 0x1_0000_0005),
            (Op::Gt, 0x1_0000_0005),
            (Op::Ge, 0x1_0000_0005),
            (Op::MaskedEq(0x1_0000_00ff), 0x1_0000_0005),
            (Op::Lt, 6),
            (Op::Gt, 6),
        ];
        for (op, value) in ops {
            let rule = Rule {
                conditions: vec![Condition { arg: 2, op, value }],
                action: Action::Allow,
            };
            let calls = vec![(
                7,
                Syscall {
                    rules: vec![rule],
                    otherwise: Action::Errno(EPERM),
                },
            )];
            let program = compile(&filter(calls));
            for arg in values {
                let holds = match op {
                    Op::Eq => arg == value,
                    Op::Ne => arg != value,
                    Op::Lt => arg < value,
                    Op::Le => arg <= value,
                    Op::Gt => arg > value,
                    Op::Ge => arg >= value,
                    Op::MaskedEq(mask) => arg & mask == value,
                };
                let expected = if holds {
                    Action::Allow
                } else {
                    Action::Errno(EPERM)
                };
                let got = decide(&program, 7, [0, 0, arg, 0, 0, 0]);
                assert_eq!(got, expected.value(), "{op:?} {value:#x} on {arg:#x}");
            }
        }
    }

    #[test]
    fn rules_apply_in_order_and_all_their_conditions_must_hold() {
        let flags = |arg: u8, value: u64| Condition {
            arg,
            op: Op::Eq,
            value,
        };
        let calls = vec![(
            56,
            Syscall {
                rules: vec![
                    Rule {
                        conditions: vec![flags(0, 1), flags(1, 2)],
                        action: Action::Errno(13),
                    },
                    Rule {
                        conditions: vec![flags(0, 1)],
                        action: Action::Allow,
                    },
                ],
                otherwise: Action::KillProcess,
            },
        )];
        let program = compile(&filter(calls));
        assert_eq!(
            decide(&program, 56, [1, 2, 0, 0, 0, 0]),
            Action::Errno(13).value()
        );
        assert_eq!(
            decide(&program, 56, [1, 3, 0, 0, 0, 0]),
            Action::Allow.value()
        );
        assert_eq!(
            decide(&program, 56, [0, 2, 0, 0, 0, 0]),
            Action::KillProcess.value()
        );
    }

    #[test]
    fn each_architecture_has_its_own_numbers() {
        let mut f = filter(vec![(1, plain(Action::Allow))]);
        f.arches.push(Arch {
            audit_arch: AUDIT_ARCH_I386,
            syscalls: [(4, plain(Action::Allow))].into_iter().collect(),
        });
        let program = compile(&f);
        assert_eq!(
            run(&program, AUDIT_ARCH_I386, 4, [0; 6]),
            Action::Allow.value()
        );
        assert_eq!(
            run(&program, AUDIT_ARCH_I386, 1, [0; 6]),
            Action::Errno(ENOSYS).value()
        );
        assert_eq!(decide(&program, 4, [0; 6]), Action::Errno(ENOSYS).value());
        // x32 numbers are refused on x86_64 only; i386 has no such bit.
        assert_eq!(
            run(&program, AUDIT_ARCH_I386, 4 | X32_SYSCALL_BIT, [0; 6]),
            Action::Errno(ENOSYS).value()
        );
    }
}
