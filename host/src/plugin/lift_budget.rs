//! A bound on what the host copies out of a plugin call.
//!
//! Lifting a result copies every string and list the plugin returns into
//! host memory, outside the plugin's memory cap and after its deadline.
//! Strings and lists may overlap in the plugin's memory, so a result that
//! fits in a few MiB can ask the host for terabytes (a million rows whose
//! cells all point at one 32 MiB string). So before a result is lifted it
//! is walked where it lies, charging each list's elements (their
//! canonical size) and each string's bytes; past the budget the call fails
//! with [`OutputTooLarge`] and nothing is copied.
//!
//! The budget is the plugin's memory cap. A result whose lists and strings
//! do not overlap occupies at least what it is charged, so no honest
//! plugin is refused; what the host then allocates is at most about four
//! times the cap (a host `String` or cell is larger than its canonical
//! form; a UTF-16 string can grow by half as UTF-8).

use std::cell::Cell;
use wasmtime::component::__internal::{CanonicalAbiInfo, ComponentTypes, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

thread_local! {
    /// Bytes a result lifted on this thread may be charged; results are
    /// lifted on the thread that makes the call.
    static BUDGET: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// A result larger, once lifted, than its budget.
#[derive(Debug, thiserror::Error)]
#[error(
    "output too large: the result would take more than {budget} bytes of host memory once copied (its lists or strings overlap); nothing was copied"
)]
pub struct OutputTooLarge {
    pub budget: u64,
}

/// Run `call` with results lifted on this thread charged to `budget`.
pub fn with_budget<R>(budget: u64, call: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|b| b.replace(budget)));
    call()
}

/// A result type whose lifting is charged to the thread's budget first.
pub struct Budgeted<T>(pub T);

// SAFETY: every item forwards to `T`, so the ABI, lowered form and type
// checks are exactly `T`'s.
unsafe impl<T: ComponentType> ComponentType for Budgeted<T> {
    type Lower = T::Lower;
    const ABI: CanonicalAbiInfo = T::ABI;
    const MAY_REQUIRE_REALLOC: bool = T::MAY_REQUIRE_REALLOC;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        T::typecheck(ty, types)
    }
}

// SAFETY: lifting is `T`'s, preceded by a read-only walk of the same bytes.
unsafe impl<T: Lift> Lift for Budgeted<T> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> wasmtime::Result<Self> {
        // A result returned in registers has at most one flat value and so
        // holds no string or list (each takes two): nothing to charge.
        T::linear_lift_from_flat(cx, ty, src).map(Budgeted)
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let budget = BUDGET.with(Cell::get);
        if budget != u64::MAX {
            let mut walk = Walk { memory: cx.memory(), types: cx.types, left: budget, budget };
            walk.value_in(&ty, bytes)?;
        }
        T::linear_lift_from_memory(cx, ty, bytes).map(Budgeted)
    }
}

/// A read-only walk over a value in guest memory, charging what lifting
/// it would copy.
struct Walk<'a> {
    memory: &'a [u8],
    types: &'a ComponentTypes,
    left: u64,
    budget: u64,
}

impl Walk<'_> {
    fn charge(&mut self, bytes: u64) -> wasmtime::Result<()> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(OutputTooLarge { budget: self.budget }.into()),
        }
    }

    fn bytes(&self, at: usize, len: usize) -> wasmtime::Result<&[u8]> {
        at.checked_add(len)
            .and_then(|end| self.memory.get(at..end))
            .ok_or_else(|| wasmtime::format_err!("pointer out of bounds of the plugin's memory"))
    }

    fn u32_at(&self, at: usize) -> wasmtime::Result<u32> {
        let b = self.bytes(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn discriminant(&self, at: usize, size: u32) -> wasmtime::Result<usize> {
        let b = self.bytes(at, size as usize)?;
        Ok(match size {
            1 => b[0] as usize,
            2 => u16::from_le_bytes([b[0], b[1]]) as usize,
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        })
    }

    fn abi(&self, ty: &InterfaceType) -> &CanonicalAbiInfo {
        self.types.canonical_abi(ty)
    }

    /// The value of type `ty` held in `bytes` (already bounds-checked by
    /// the caller, as wasmtime does for the return area).
    fn value_in(&mut self, ty: &InterfaceType, bytes: &[u8]) -> wasmtime::Result<()> {
        // Walk the value as if it lived at an address: the return area is
        // inside guest memory, so find where.
        let base = self.memory.as_ptr() as usize;
        let at = (bytes.as_ptr() as usize)
            .checked_sub(base)
            .filter(|at| at + bytes.len() <= self.memory.len())
            .ok_or_else(|| wasmtime::format_err!("return area outside the plugin's memory"))?;
        self.value(ty, at)
    }

    fn value(&mut self, ty: &InterfaceType, at: usize) -> wasmtime::Result<()> {
        match ty {
            InterfaceType::String => {
                let len = self.u32_at(at + 4)? as u64;
                // UTF-16 lengths are tagged and count code units.
                let units = len & !(1 << 31);
                self.charge(if len != units { units * 2 } else { units })
            }
            InterfaceType::List(index) => {
                let element = self.types[*index].element;
                let (ptr, len) = (self.u32_at(at)? as usize, self.u32_at(at + 4)? as usize);
                let size = self.abi(&element).size32 as usize;
                self.charge(len as u64 * size.max(1) as u64)?;
                if self.holds_pointers(&element) {
                    self.bytes(ptr, len.saturating_mul(size))?;
                    for i in 0..len {
                        self.value(&element, ptr + i * size)?;
                    }
                }
                Ok(())
            }
            InterfaceType::Map(index) => {
                let map = &self.types[*index];
                let (key, value, entry, value_offset) =
                    (map.key, map.value, map.entry_abi.size32 as usize, map.value_offset32 as usize);
                let (ptr, len) = (self.u32_at(at)? as usize, self.u32_at(at + 4)? as usize);
                self.charge(len as u64 * entry.max(1) as u64)?;
                if self.holds_pointers(&key) || self.holds_pointers(&value) {
                    self.bytes(ptr, len.saturating_mul(entry))?;
                    for i in 0..len {
                        self.value(&key, ptr + i * entry)?;
                        self.value(&value, ptr + i * entry + value_offset)?;
                    }
                }
                Ok(())
            }
            InterfaceType::Record(index) => {
                let fields: Vec<InterfaceType> = self.types[*index].fields.iter().map(|f| f.ty).collect();
                self.sequence(&fields, at)
            }
            InterfaceType::Tuple(index) => {
                let types = self.types[*index].types.to_vec();
                self.sequence(&types, at)
            }
            InterfaceType::Variant(index) => {
                let variant = &self.types[*index];
                let (size, offset) = (u32::from(variant.info.size), variant.info.payload_offset32 as usize);
                let case = self.discriminant(at, size)?;
                let payload = match variant.cases.get_index(case) {
                    Some((_, payload)) => *payload,
                    None => wasmtime::bail!("invalid variant discriminant {case}"),
                };
                match payload {
                    Some(payload) => self.value(&payload, at + offset),
                    None => Ok(()),
                }
            }
            InterfaceType::Option(index) => {
                let option = &self.types[*index];
                let (payload, size, offset) =
                    (option.ty, u32::from(option.info.size), option.info.payload_offset32 as usize);
                match self.discriminant(at, size)? {
                    0 => Ok(()),
                    1 => self.value(&payload, at + offset),
                    other => wasmtime::bail!("invalid option discriminant {other}"),
                }
            }
            InterfaceType::Result(index) => {
                let result = &self.types[*index];
                let (ok, err, size, offset) =
                    (result.ok, result.err, u32::from(result.info.size), result.info.payload_offset32 as usize);
                let payload = match self.discriminant(at, size)? {
                    0 => ok,
                    1 => err,
                    other => wasmtime::bail!("invalid result discriminant {other}"),
                };
                match payload {
                    Some(payload) => self.value(&payload, at + offset),
                    None => Ok(()),
                }
            }
            InterfaceType::FixedLengthList(index) => {
                let list = &self.types[*index];
                let (element, count) = (list.element, list.size as usize);
                let size = self.abi(&element).size32 as usize;
                if self.holds_pointers(&element) {
                    for i in 0..count {
                        self.value(&element, at + i * size)?;
                    }
                }
                Ok(())
            }
            // Scalars, flags, enums and handles copy nothing beyond
            // themselves (counted by whatever holds them).
            _ => Ok(()),
        }
    }

    /// Fields laid out one after another, each at its alignment.
    fn sequence(&mut self, types: &[InterfaceType], at: usize) -> wasmtime::Result<()> {
        let mut offset = 0usize;
        for ty in types {
            let abi = self.abi(ty);
            let (align, size) = (abi.align32.max(1) as usize, abi.size32 as usize);
            offset = offset.div_ceil(align) * align;
            self.value(ty, at + offset)?;
            offset += size;
        }
        Ok(())
    }

    /// Whether a value of `ty` can hold a string or list.
    fn holds_pointers(&self, ty: &InterfaceType) -> bool {
        match ty {
            InterfaceType::String | InterfaceType::List(_) | InterfaceType::Map(_) => true,
            InterfaceType::Record(i) => self.types[*i].fields.iter().any(|f| self.holds_pointers(&f.ty)),
            InterfaceType::Tuple(i) => self.types[*i].types.iter().any(|t| self.holds_pointers(t)),
            InterfaceType::Variant(i) => self.types[*i].cases.values().flatten().any(|t| self.holds_pointers(t)),
            InterfaceType::Option(i) => self.holds_pointers(&self.types[*i].ty),
            InterfaceType::Result(i) => {
                let r = &self.types[*i];
                r.ok.iter().chain(r.err.iter()).any(|t| self.holds_pointers(t))
            }
            InterfaceType::FixedLengthList(i) => self.holds_pointers(&self.types[*i].element),
            _ => false,
        }
    }
}
