//! The [`Foreign`] trait, the binding vocabulary every strategy provides,
//! and the typed [`Function`], [`Callback`] and [`Owned`] handles built on it.

use std::any::Any;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::strategy::{st, ErasedFn, FuncOf, HasStrategy, Isolated, Strategy};
use crate::types::{
    char, ptr_opt, Brand, BytesRef, DataModel, Direct, Field, FnType, Frame, FunPtr, Memory,
    Params, Ptr, Raw, Scalar, Shadow, Site, StrArrayRef, StrRef, Struct, Typ,
};

/// The binding vocabulary: the Rust form of ctypes' `FOREIGN` signature.
///
/// Bindings are written generically over `L: Foreign` and work unchanged with
/// every strategy: `function`, `callback`, `read`, `write`, `alloc` and
/// friends. It is implemented by the strategies this crate provides and by
/// nothing else (it is sealed); the strategy interface behind it is private,
/// so binding code sees exactly this vocabulary.
///
/// A few operations claim memory beyond what a pointer's type says (pointer
/// arithmetic, casts, lengths and terminators chosen by the host). They are
/// safe where the strategy checks every access ([`Isolated`]: the Sandbox)
/// and `unsafe` (`*_unchecked`) everywhere else, because on `Dynamic` library
/// memory is host memory.
pub trait Foreign: HasStrategy + Clone + Send + 'static {
    /// The library's data model (LP64 natively, ILP32 in the Sandbox): the
    /// one struct layouts and `long`/`size_t` ranges follow.
    fn model(&self) -> DataModel {
        Memory::model(st(self))
    }

    /// Binds the function `name` with type `ty` (ctypes' `foreign`).
    fn function<A: Params, R: Shadow>(
        &self,
        name: &str,
        ty: &FnType<A, R>,
    ) -> Result<Function<Self, A, R>> {
        // `resolve` lowers the signature (each strategy needs the words), so
        // what cannot be passed is rejected now, not on the first call.
        let func = st(self).resolve(name, ty.sig(), ty.captures_errno())?;
        Ok(Function::new(self, name, ty, func))
    }

    /// Binds a function pointer the library returned, so it can be called
    /// like any bound function (ctypes' function pointer results). The
    /// pointer must come from this library instance, in its current reset
    /// generation ([`Error::ForeignPointer`], [`Error::StalePointer`]).
    ///
    /// In the Sandbox the address is a slot of the module's function table;
    /// it is bound only if the function there has the declared type's wasm
    /// signature, checked again after a reset. On Stubs the call goes
    /// through a wrapper generated for the function pointer type (the
    /// binding module must declare a function that returns or takes it).
    /// In a worker process the address belongs to that worker: after a
    /// reset the bound function fails with [`Error::StalePointer`].
    fn function_at<A: Params, R: Shadow>(
        &self,
        code: &crate::types::CodePtr<A, R>,
    ) -> Result<Function<Self, A, R>> {
        let ty = code.fn_type();
        let name = format!("{} at {:#x}", ty.sig().c_prototype("(*)"), code.addr());
        code.brand()
            .admit(st(self).brand(), code.addr(), || name.clone(), false)?;
        // SAFETY: `code` was lifted from a value this library instance (the
        // brand, checked just above, says so, in this generation) returned
        // as a function pointer of type `ty`; its fields are private, so no
        // one else made it.
        let func =
            unsafe { st(self).resolve_code(code.addr(), ty.sig(), ty.captures_errno(), &name) }?;
        Ok(Function::new(self, &name, ty, func))
    }

    /// The address of the global `name`, of type `ty` (ctypes' `foreign_value`).
    fn global<T: Shadow>(&self, name: &str, ty: &Typ<T>) -> Result<Ptr<T>> {
        let _ = ty;
        Ptr::from_library(st(self).symbol_addr(name)?, st(self).brand()).ok_or_else(|| {
            Error::MissingSymbol {
                strategy: <Self as HasStrategy>::Strategy::NAME,
                library: st(self).library_name(),
                symbol: name.into(),
                reason: "the symbol's address is NULL".into(),
            }
        })
    }

    /// The value of the C constant `name` (a `#define` or an enum value),
    /// of scalar type `ty`, as the C compiler evaluated it against the
    /// library's headers (ctypes' `constant`). It needs a library built by
    /// `sandlink-build` with stubs from a binding module that declares it:
    /// the build compiles `sandlink_const_<name>` into the wasm module, the
    /// shared object and the stubs alike, each for its own target.
    fn constant<T: Scalar>(&self, name: &str, ty: &Typ<T>) -> Result<T::Out> {
        let raw = st(self).constant_raw(name, ty.desc())?;
        // SAFETY: one word of `ty`'s scalar type, read from the library; a
        // scalar's lift only validates and converts it.
        unsafe { T::lift(ty, &[raw], st(self), Site::Return) }.map_err(|e| Error::InvalidValue {
            function: None,
            what: format!("constant `{name}`"),
            reason: e.to_string(),
        })
    }

    /// Storage for the C type `c_type` (`"yaml_parser_t"`,
    /// `"struct z_stream_s"`) with the size and alignment the C compiler
    /// gave it when it built this library: for a type whose fields the
    /// bindings never touch, allocated with [`Foreign::alloc`] and handed
    /// to the library by pointer. No header of your own and no constant:
    /// the binding module's stubs compile `sizeof` and `_Alignof` of
    /// `c_type` into every build (for the Recorder it is incomplete). The
    /// type's layout is this library's data model's only; with a library of
    /// the other model it is an error, never a wrong size.
    fn opaque_sized<Tag: 'static>(&self, c_type: &str) -> Result<Typ<Struct<Tag>>> {
        let size = self.constant(&format!("sizeof({c_type})"), &crate::types::size_t())?;
        let align = self.constant(&format!("_Alignof({c_type})"), &crate::types::size_t())?;
        // Both 0: the Recorder's placeholders (no compiler has run yet).
        let measured = (size, align) != (0, 0);
        crate::types::StructBuilder::<Tag>::sized(
            c_type,
            self.model(),
            measured.then_some((size, align)),
        )
    }

    /// A C function pointer of type `ty` that runs `f`. C may call it until
    /// the returned handle is dropped; dropping it while a call into the
    /// library is in progress on another thread waits for that call to end
    /// (C may be running the callback). Errors from `f` (or from lifting its
    /// arguments) end the C call that is running: C sees zero returned, and
    /// that call returns the error.
    fn callback<A, R, F>(&self, ty: &Typ<FunPtr<A, R>>, f: F) -> Result<Callback<A, R>>
    where
        A: Params,
        R: Scalar,
        F: FnMut(A::Out) -> Result<R::Out> + Send + 'static,
    {
        let fn_ty = ty.fn_type();
        // `make_callback` lowers the signature and rejects what cannot pass.
        let erased = erase(fn_ty.clone(), f);
        let made = st(self).make_callback(fn_ty.sig(), erased)?;
        Ok(Callback::made(st(self), made))
    }

    /// A `void` C function pointer of type `ty` whose calls may be
    /// **batched**: recorded on the library's side of the boundary and
    /// delivered to `f` later, in one crossing for many calls. On a
    /// strategy where each callback is a costly crossing (a worker
    /// process), this is what makes a callback-heavy library (a parser's
    /// event handlers) cheap. A sandbox records the calls inside the
    /// instance once the callback has been called
    /// `SandboxConfig::record_batched_after` times; the native strategies
    /// deliver each call at once, as
    /// [`Foreign::callback`] does.
    ///
    /// What is guaranteed:
    /// - Every call C makes reaches `f`, in the order C made them, and
    ///   before anything that crosses after it: a call of another,
    ///   unbatched callback, the end of the call into the library that made
    ///   it (nested calls included), or a batch filling up.
    /// - The strings, byte pairs and string arrays the type declares
    ///   ([`crate::types::string`], [`crate::types::str_ref`],
    ///   [`crate::types::bytes_ref`], [`crate::types::str_array_ref`],
    ///   [`crate::types::buffer`]) are copied when C makes the call, so
    ///   `f` reads them as they were then; every value is validated as for
    ///   any callback.
    /// - An error from `f` (or from lifting its arguments) is the error of
    ///   the call into the library during which it is delivered, and later
    ///   calls of that call run no Rust code, as with
    ///   [`Foreign::callback`].
    ///
    /// What `f` cannot do, because C has moved on by the time it runs:
    /// - return anything to C (the type returns `void`);
    /// - stop or steer the library at that point: a call it makes into the
    ///   library (expat's `XML_StopParser`, a position query) sees the
    ///   library as it is at delivery, after later calls of the batch;
    /// - read other library memory as it was: a plain pointer argument
    ///   ([`crate::types::ptr`]) points at memory as it is at delivery.
    ///
    /// A call whose copied arguments do not fit in a batch is delivered at
    /// once, after the calls recorded before it. Calls recorded while the
    /// handle lived reach `f` even if a closure of the same delivery drops
    /// the handle; a call C makes after the drop fails as for any callback
    /// ([`Error::CallbackDropped`]).
    fn callback_batched<A, F>(&self, ty: &Typ<FunPtr<A, ()>>, f: F) -> Result<Callback<A, ()>>
    where
        A: Params,
        F: FnMut(A::Out) -> Result<()> + Send + 'static,
    {
        let fn_ty = ty.fn_type();
        let captures = A::captures(&fn_ty.args);
        let erased = erase(fn_ty.clone(), f);
        let made = st(self).make_batched_callback(fn_ty.sig(), &captures, erased)?;
        Ok(Callback::made(st(self), made))
    }

    /// Holds the library for the calling thread until the returned guard
    /// drops: the single-owner fast path. Every call into the library (and
    /// every callback, and every memory access) takes the library's call
    /// lock, two atomic read-modify-writes when the lock is free; while a
    /// [`Hold`] lives, this thread's calls re-enter the lock instead, with
    /// plain loads and stores. Calls from other threads (through clones of
    /// the handle) wait until the hold ends, so hold the library for a
    /// batch of work, not forever. Calls from callbacks on this thread work
    /// as always. [`Hold`] cannot leave its thread.
    ///
    /// ```
    /// # use sandlink::{Foreign, Result};
    /// fn sum<L: Foreign>(lib: &L, add: &sandlink::Function<L, (i32, i32), i32>) -> Result<i32> {
    ///     let _held = lib.hold();
    ///     let mut acc = 0;
    ///     for i in 0..1000 {
    ///         acc = add.call((acc, i))?; // no atomic RMW per call
    ///     }
    ///     Ok(acc)
    /// }
    /// ```
    fn hold(&self) -> Hold<'_> {
        Hold {
            _lock: Strategy::hold(st(self)),
        }
    }

    /// Reads the `T` at `p` (ctypes' `!@`).
    fn read<T: Shadow>(&self, ty: &Typ<T>, p: Ptr<T>) -> Result<T::Out> {
        let addr = p.addr_in(st(self), || "read".into())?;
        // SAFETY: `p` belongs to this library and generation, so by the
        // pointer invariant (crate docs, "Soundness") it points at a `T`,
        // which `ty` describes (the description is trusted on strategies
        // that are not `Isolated`: `Dynamic::open`'s contract).
        unsafe { T::load(ty, addr, st(self)) }
    }

    /// Writes a scalar `T` at `p` (ctypes' `<-@`), range-checked for the
    /// library's data model.
    fn write<T: Scalar>(&self, ty: &Typ<T>, p: Ptr<T>, v: T::Out) -> Result<()> {
        let addr = p.addr_in(st(self), || "write".into())?;
        let site = Site::Memory(addr);
        let prim = ty.desc().scalar().ok_or_else(|| Error::NotPassable {
            what: site.to_string(),
            c_type: ty.c_name(),
            reason: "only a scalar can be written as one value; write its fields".into(),
        })?;
        let mut f = Frame::for_value(st(self), site);
        T::lower(ty, T::to_in(v), &mut f)?;
        let raw = f.words().first().copied().unwrap_or_default();
        let bits = prim.narrow_to(raw, self.model(), || site.to_string())?;
        let n = prim.size(self.model()) as usize;
        // SAFETY: as in `read`: `p` points at a `T`, which is `n` bytes.
        unsafe { st(self).write_raw(addr, &bits.to_le_bytes()[..n]) }
    }

    /// Allocates room for `count` values of `ty` in the library's memory
    /// (at least one, so the pointer always has a `T` behind it), zeroed.
    /// The handle frees it when dropped; [`Owned::into_raw`] hands it to C
    /// instead.
    fn alloc<T: Shadow>(&self, ty: &Typ<T>, count: u64) -> Result<Owned<Self, T>> {
        let (size, align) = ty.size_align(self.model())?;
        let total = size.checked_mul(count).ok_or_else(|| Error::Alloc {
            function: None,
            size: u64::MAX,
            reason: format!("{count} × {size} bytes overflows"),
        })?;
        // Room for at least one element even when `count` is 0: the handle's
        // `ptr()` is a `Ptr<T>`, which safe code may read a `T` through.
        let total = total.max(size).max(1);
        let addr = st(self).alloc_raw(total, align)?;
        let Some(ptr) = Ptr::from_library(addr, st(self).brand()) else {
            return Err(Error::Alloc {
                function: None,
                size: total,
                reason: "the allocator returned NULL".into(),
            });
        };
        // Owned from here on, so any error below frees it.
        let owned = Owned {
            lib: self.clone(),
            ptr,
            size,
            count,
            owns: true,
        };
        // Zero all of it, however large, a bounded chunk at a time.
        const CHUNK: u64 = 64 << 10;
        let zero = vec![0u8; total.min(CHUNK) as usize];
        let mut done = 0;
        while done < total {
            let n = (total - done).min(CHUNK);
            // SAFETY: inside the fresh block of `total` bytes at `addr`.
            unsafe { st(self).write_raw(addr + done, &zero[..n as usize]) }?;
            done += n;
        }
        Ok(owned)
    }

    /// Frees memory that the library allocated and handed over (or that
    /// [`Owned::into_raw`] gave away and C gave back).
    ///
    /// # Safety
    /// `p` must be the start of a block from this library's allocator that
    /// is not freed yet, and nothing may use it afterwards. With the
    /// `Dynamic` strategy a double free or a foreign address corrupts the
    /// host's heap; the Sandbox confines the damage to the library's own
    /// memory, but the contract is the same for every strategy. Memory from
    /// [`Foreign::alloc`] needs no call: drop its [`Owned`] handle.
    unsafe fn free<T>(&self, p: Ptr<T>) -> Result<()> {
        let addr = p.addr_in(st(self), || "free".into())?;
        // SAFETY: the caller's promise.
        unsafe { st(self).free_raw(addr) }
    }

    /// Copies `s` and a NUL into newly allocated library memory.
    fn alloc_string(&self, s: &str) -> Result<Owned<Self, i8>> {
        if let Some(index) = s.bytes().position(|b| b == 0) {
            return Err(Error::InteriorNul {
                function: None,
                what: "alloc_string".into(),
                index,
            });
        }
        let p = self.alloc(&crate::types::char(), s.len() as u64 + 1)?;
        // SAFETY: the block holds `s.len() + 1` bytes (zeroed, so the last
        // one is the NUL).
        unsafe { st(self).write_raw(p.ptr().addr(), s.as_bytes()) }?;
        Ok(p)
    }

    /// Reads the NUL-terminated UTF-8 string at `p`.
    fn read_string<T>(&self, p: Ptr<T>) -> Result<String>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any address is checked.
        unsafe { self.read_string_unchecked(p) }
    }

    /// [`Foreign::read_string`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `p` points at a NUL-terminated
    /// string in live library memory.
    unsafe fn read_string_unchecked<T>(&self, p: Ptr<T>) -> Result<String> {
        let addr = p.addr_in(st(self), || "read_string".into())?;
        // SAFETY: the caller's promise.
        unsafe { crate::types::lift_str(addr, st(self), Site::Memory(addr)) }
    }

    /// Reads `len` bytes at `p`.
    fn read_bytes<T>(&self, p: Ptr<T>, len: u64) -> Result<Vec<u8>>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any range is checked.
        unsafe { self.read_bytes_unchecked(p, len) }
    }

    /// [`Foreign::read_bytes`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `len` bytes at `p` are live
    /// library memory.
    unsafe fn read_bytes_unchecked<T>(&self, p: Ptr<T>, len: u64) -> Result<Vec<u8>> {
        let addr = p.addr_in(st(self), || "read_bytes".into())?;
        // SAFETY: the caller's promise.
        unsafe { crate::types::read_vec(st(self), addr, len, Site::Memory(addr)) }
    }

    /// Appends the NUL-terminated UTF-8 string at `p` to `buf` and returns
    /// the range it took there: [`Foreign::read_string`] without allocating,
    /// once `buf` has grown. Clear and reuse one buffer to borrow a `&str`
    /// per call (`&buf[range]`), or append several strings to one buffer.
    /// On failure (no NUL within the limit, invalid UTF-8, a bad address)
    /// `buf` is as it was.
    fn read_string_into<T>(&self, p: Ptr<T>, buf: &mut String) -> Result<Range<usize>>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any address is checked.
        unsafe { self.read_string_into_unchecked(p, buf) }
    }

    /// [`Foreign::read_string_into`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `p` points at a NUL-terminated
    /// string in live library memory.
    unsafe fn read_string_into_unchecked<T>(
        &self,
        p: Ptr<T>,
        buf: &mut String,
    ) -> Result<Range<usize>> {
        let addr = p.addr_in(st(self), || "read_string_into".into())?;
        // SAFETY: the caller's promise.
        unsafe { crate::types::append_str(addr, st(self), Site::Memory(addr), buf) }
    }

    /// Appends the `len` bytes at `p` to `buf` and returns the range they
    /// took there: [`Foreign::read_bytes`] without allocating, once `buf`
    /// has grown. On failure `buf` is as it was.
    fn read_bytes_into<T>(&self, p: Ptr<T>, len: u64, buf: &mut Vec<u8>) -> Result<Range<usize>>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any range is checked.
        unsafe { self.read_bytes_into_unchecked(p, len, buf) }
    }

    /// [`Foreign::read_bytes_into`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `len` bytes at `p` are live
    /// library memory.
    unsafe fn read_bytes_into_unchecked<T>(
        &self,
        p: Ptr<T>,
        len: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Range<usize>> {
        let addr = p.addr_in(st(self), || "read_bytes_into".into())?;
        let start = buf.len();
        // SAFETY: the caller's promise, for exactly this range.
        unsafe { crate::types::marshal::append_vec(st(self), addr, len, Site::Memory(addr), buf) }?;
        Ok(start..buf.len())
    }

    /// Reads the string C lent (a [`crate::types::str_ref`]): safe on every
    /// strategy, since its declared type says it is a NUL-terminated string.
    fn read_str(&self, s: StrRef) -> Result<String> {
        let mut out = String::new();
        self.read_str_into(s, &mut out)?;
        Ok(out)
    }

    /// Reads a string the library allocated, then frees it with `free`
    /// (bound as taking an [`crate::types::OwnedStr`]), whether or not the
    /// read succeeded: nothing leaks and nothing is read after the free.
    fn take_str(
        &self,
        s: crate::types::OwnedStr,
        free: &Function<Self, (crate::types::OwnedStr,), ()>,
    ) -> Result<String> {
        let read = self.read_str(s.borrow());
        free.call((s,))?;
        read
    }

    /// Appends the string C lent to `buf` and returns the range it took
    /// there, checked as UTF-8: [`Foreign::read_str`] without allocating,
    /// once `buf` has grown. On failure `buf` is as it was.
    fn read_str_into(&self, s: StrRef, buf: &mut String) -> Result<Range<usize>> {
        // SAFETY: `s` was lifted from a value of a type the binding declared
        // as a NUL-terminated string (`str_ref`), and keeps its library and
        // generation, which the read checks: the pointer invariant (crate
        // docs, "Soundness"). On an `Isolated` strategy any address is
        // checked anyway.
        unsafe { self.read_string_into_unchecked(s.ptr::<i8>(), buf) }
    }

    /// Appends the bytes C lent (a [`crate::types::bytes_ref`] pair) to `buf`
    /// and returns the range they took there; on failure `buf` is as it was.
    fn read_bytes_ref_into(&self, b: BytesRef, buf: &mut Vec<u8>) -> Result<Range<usize>> {
        if b.is_empty() {
            // NULL with length 0 is valid and has no bytes.
            return Ok(buf.len()..buf.len());
        }
        // SAFETY: `b` was lifted from a `(pointer, length)` pair the binding
        // declared as `len` bytes at its address (`bytes_ref`), with the
        // length checked when it was received; it keeps its library and
        // generation, which the read checks: the pointer invariant. On an
        // `Isolated` strategy any range is checked.
        unsafe { self.read_bytes_into_unchecked(b.ptr::<u8>(), b.len(), buf) }
    }

    /// Calls `f` with each string of the NULL-terminated array C lent (a
    /// [`crate::types::str_array_ref`]), in order, up to the terminator or
    /// `limit` strings (past which it is an error), stopping at `f`'s first
    /// error; returns how many strings there were.
    fn for_each_str(
        &self,
        a: StrArrayRef,
        limit: u64,
        mut f: impl FnMut(StrRef) -> Result<()>,
    ) -> Result<u64> {
        // SAFETY: the array was declared NULL-terminated, of strings
        // (`str_array_ref`), and keeps its library and generation, which
        // each read checks: the pointer invariant gives the elements before
        // the terminator, and the terminator. Each non-NULL element is a
        // string by the same declaration. On an `Isolated` strategy any
        // address is checked.
        unsafe {
            self.for_each_terminated_unchecked(&ptr_opt(char()), a.ptr(), limit, |s| {
                f(StrRef::from_ptr(s))
            })
        }
    }

    /// Writes `bytes` at `p`.
    fn write_bytes<T>(&self, p: Ptr<T>, bytes: &[u8]) -> Result<()>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any range is checked.
        unsafe { self.write_bytes_unchecked(p, bytes) }
    }

    /// [`Foreign::write_bytes`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `bytes.len()` bytes at `p` are
    /// live, writable library memory.
    unsafe fn write_bytes_unchecked<T>(&self, p: Ptr<T>, bytes: &[u8]) -> Result<()> {
        let addr = p.addr_in(st(self), || "write_bytes".into())?;
        // SAFETY: the caller's promise.
        unsafe { st(self).write_raw(addr, bytes) }
    }

    /// The address of field `f` of the struct at `p`, under the library's
    /// data model.
    fn field_ptr<S: 'static, T: Shadow>(
        &self,
        p: Ptr<Struct<S>>,
        f: &Field<S, T>,
    ) -> Result<Ptr<T>> {
        let off = f.offset(self.model())?;
        // SAFETY: `p` points at a struct tagged `S` (the pointer
        // invariant). `f` is a field of a sealed description tagged `S`:
        // `offset` fails for a builder never sealed and for a field added
        // after `seal`. Two descriptions may share the tag, so this does not
        // by itself put `f` inside the struct at `p`; what does is, on a
        // non-`Isolated` strategy, the promise of opening the library that
        // every description used with it is the library's real struct (on
        // Stubs also checked against the headers at build time), and on an
        // `Isolated` one every access is checked whatever the address.
        unsafe { Ok(p.byte_add(off)?.cast()) }
    }

    /// Reads field `f` of the struct at `p`.
    fn read_field<S: 'static, T: Shadow>(
        &self,
        p: Ptr<Struct<S>>,
        f: &Field<S, T>,
    ) -> Result<T::Out> {
        self.read(f.typ(), self.field_ptr(p, f)?)
    }

    /// Writes scalar field `f` of the struct at `p`.
    fn write_field<S: 'static, T: Scalar>(
        &self,
        p: Ptr<Struct<S>>,
        f: &Field<S, T>,
        v: T::Out,
    ) -> Result<()> {
        self.write(f.typ(), self.field_ptr(p, f)?, v)
    }

    /// A pointer to whatever lies at `addr` in the library's memory (`None`
    /// for 0). On other strategies this is the `unsafe` [`Ptr::from_addr`].
    fn ptr_at<T>(&self, addr: u64) -> Option<Ptr<T>>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any address is checked at each access.
        unsafe { Ptr::from_addr(st(self), addr) }
    }

    /// The same address seen as a pointer to `U` (a C cast).
    fn cast_ptr<T, U>(&self, p: Ptr<T>) -> Result<Ptr<U>>
    where
        Self: Isolated,
    {
        p.addr_in(st(self), || "cast_ptr".into())?;
        // SAFETY: `Isolated`: whatever `U` claims is checked at each access.
        Ok(unsafe { p.cast() })
    }

    /// The address `bytes` further on.
    fn offset_ptr<T>(&self, p: Ptr<T>, bytes: u64) -> Result<Ptr<T>>
    where
        Self: Isolated,
    {
        p.addr_in(st(self), || "offset_ptr".into())?;
        // SAFETY: `Isolated`: any address is checked at each access.
        unsafe { p.byte_add(bytes) }
    }

    /// `&p[i]` for elements of type `ty`. (For memory from [`Foreign::alloc`],
    /// [`Owned::elem`] is bounds-checked on every strategy.)
    fn elem_ptr<T: Shadow>(&self, ty: &Typ<T>, p: Ptr<T>, i: u64) -> Result<Ptr<T>>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any address is checked at each access.
        unsafe { self.elem_ptr_unchecked(ty, p, i) }
    }

    /// [`Foreign::elem_ptr`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `p` points into an array of at
    /// least `i + 1` elements described by `ty` (`i` may equal the length
    /// only if the result is not read or written).
    unsafe fn elem_ptr_unchecked<T: Shadow>(
        &self,
        ty: &Typ<T>,
        p: Ptr<T>,
        i: u64,
    ) -> Result<Ptr<T>> {
        let (size, _) = ty.size_align(self.model())?;
        let off = size.checked_mul(i).ok_or_else(|| Error::InvalidValue {
            function: None,
            what: format!("index {i}"),
            reason: format!("offset overflows for `{}`", ty.c_name()),
        })?;
        // SAFETY: the caller's promise.
        unsafe { p.byte_add(off) }
    }

    /// Reads `p[0]`, `p[1]`, … up to (not including) the first element equal
    /// to the zero value, at most `limit` elements: NULL-terminated arrays
    /// such as expat's attribute list.
    fn read_terminated<T: Shadow>(
        &self,
        ty: &Typ<Option<Ptr<T>>>,
        p: Ptr<Option<Ptr<T>>>,
        limit: u64,
    ) -> Result<Vec<Ptr<T>>>
    where
        Self: Isolated,
    {
        // SAFETY: `Isolated`: any address is checked at each access.
        unsafe { self.read_terminated_unchecked(ty, p, limit) }
    }

    /// [`Foreign::read_terminated`] on any strategy.
    ///
    /// # Safety
    /// Unless the strategy is [`Isolated`], `p` points at an array of
    /// pointers ended by NULL (or at least `limit` long), and each non-NULL
    /// element points at a `T`.
    unsafe fn read_terminated_unchecked<T: Shadow>(
        &self,
        ty: &Typ<Option<Ptr<T>>>,
        p: Ptr<Option<Ptr<T>>>,
        limit: u64,
    ) -> Result<Vec<Ptr<T>>> {
        let mut out = Vec::new();
        // SAFETY: the caller's promise, passed on.
        unsafe {
            self.for_each_terminated_unchecked(ty, p, limit, |q| {
                out.push(q);
                Ok(())
            })
        }?;
        Ok(out)
    }

    /// [`Foreign::read_terminated_unchecked`] without collecting: calls `f`
    /// with each element before the terminator, in order, stopping at its
    /// first error; returns how many elements there were.
    ///
    /// # Safety
    /// As for [`Foreign::read_terminated_unchecked`].
    unsafe fn for_each_terminated_unchecked<T: Shadow>(
        &self,
        ty: &Typ<Option<Ptr<T>>>,
        p: Ptr<Option<Ptr<T>>>,
        limit: u64,
        mut f: impl FnMut(Ptr<T>) -> Result<()>,
    ) -> Result<u64> {
        for i in 0..limit {
            // SAFETY: element `i` comes before the terminator, or is it (the
            // caller's promise).
            let e = unsafe { self.elem_ptr_unchecked(ty, p, i) }?;
            match self.read(ty, e)? {
                Some(q) => f(q)?,
                None => return Ok(i),
            }
        }
        Err(Error::InvalidValue {
            function: None,
            what: Site::Memory(p.addr()).to_string(),
            reason: format!("no NULL terminator within {limit} elements"),
        })
    }
}

impl<S: Strategy> Foreign for S {}

fn erase<A, R, F>(ty: FnType<A, R>, mut f: F) -> ErasedFn
where
    A: Params,
    R: Scalar,
    F: FnMut(A::Out) -> Result<R::Out> + Send + 'static,
{
    // A `void` callback lowers nothing: no frame to make and drop per call.
    let void = matches!(*ty.ret.desc, crate::types::CType::Void);
    Box::new(move |mem: &dyn Memory, raws: &[Raw]| {
        // SAFETY: `make_callback`'s contract (`Strategy`): called only with
        // the words C passed for this signature, and that library's memory.
        let args = unsafe { A::lift(&ty.args, raws, mem) }?;
        let r = f(args)?;
        if void {
            return Ok(None);
        }
        let mut frame = Frame::for_value(mem, Site::Return);
        R::lower(&ty.ret, R::to_in(r), &mut frame)?;
        Ok(frame.words().first().copied())
    })
}

/// The library held by one thread ([`Foreign::hold`]); released when
/// dropped. It is neither `Send` nor `Sync`: the lock belongs to the thread
/// that took it.
///
/// ```compile_fail,E0277
/// # use sandlink::{Dynamic, Foreign};
/// fn elsewhere(lib: &'static Dynamic) {
///     let held = lib.hold();
///     std::thread::spawn(move || drop(held)); // error: `Hold` is not `Send`
/// }
/// ```
#[must_use = "the library is held only while the guard lives"]
pub struct Hold<'a> {
    _lock: Box<dyn crate::strategy::HeldLock + 'a>,
}

impl std::fmt::Debug for Hold<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

/// Memory allocated in a library by [`Foreign::alloc`], freed when dropped.
///
/// [`Owned::ptr`] gives the (copyable) pointer to pass to C or to read and
/// write through; the block stays allocated while the handle lives. After
/// the library is reset the block is gone with the old instance, and the
/// handle frees nothing.
///
/// Freeing consumes the handle, so a second free does not compile:
///
/// ```compile_fail,E0382
/// # use sandlink::{Foreign, Sandbox, types::int};
/// # fn twice(lib: &Sandbox) -> sandlink::Result<()> {
/// let block = lib.alloc(&int(), 1)?;
/// block.free()?;
/// block.free()?; // error: use of moved value
/// # Ok(()) }
/// ```
pub struct Owned<L: Foreign, T> {
    lib: L,
    ptr: Ptr<T>,
    /// The size of one element, under the library's data model.
    size: u64,
    /// How many elements the block holds.
    count: u64,
    /// Whether this handle still owns the block (false once given to C or
    /// freed).
    owns: bool,
}

impl<L: Foreign, T> Owned<L, T> {
    /// The pointer to the block.
    pub fn ptr(&self) -> Ptr<T> {
        self.ptr
    }

    /// How many elements the block holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the block holds no elements.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `&block[i]`, checked against the block's length: safe on every
    /// strategy, unlike [`Foreign::elem_ptr`] on a pointer of unknown extent.
    pub fn elem(&self, i: u64) -> Result<Ptr<T>> {
        if i >= self.count {
            return Err(Error::InvalidValue {
                function: None,
                what: format!("index {i}"),
                reason: format!(
                    "out of bounds for a block of {} elements at {:#x}",
                    self.count,
                    self.ptr.addr()
                ),
            });
        }
        // SAFETY: `i < count`, so the element lies inside the live block
        // this handle owns (no overflow: `size * count` was checked at
        // allocation).
        unsafe { self.ptr.byte_add(i * self.size) }
    }

    /// The block's size in bytes (its elements' size under the library's
    /// data model, times their number).
    pub fn byte_len(&self) -> u64 {
        self.size * self.count
    }

    /// The address of `len` bytes from `offset` in the block, checked
    /// against its size and against the library's resets.
    fn range(&self, offset: u64, len: u64, what: &str) -> Result<u64> {
        let addr = self.ptr.addr_in(st(&self.lib), || what.to_string())?;
        match offset.checked_add(len) {
            Some(end) if end <= self.byte_len() => Ok(addr + offset),
            _ => Err(Error::OutOfBounds {
                function: None,
                what: format!("{what} of the block at {addr:#x}"),
                address: addr.wrapping_add(offset),
                len,
                size: self.byte_len(),
            }),
        }
    }

    /// Reads `len` bytes from `offset` in the block: checked against the
    /// block's size, so safe on every strategy.
    pub fn read_bytes(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let addr = self.range(offset, len, "read_bytes")?;
        // SAFETY: inside the live block this handle owns (checked above).
        unsafe { crate::types::read_vec(st(&self.lib), addr, len, Site::Memory(addr)) }
    }

    /// Writes `bytes` at `offset` in the block, checked against its size.
    pub fn write_bytes(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        let addr = self.range(offset, bytes.len() as u64, "write_bytes")?;
        // SAFETY: inside the live block this handle owns (checked above).
        unsafe { st(&self.lib).write_raw(addr, bytes) }
    }

    /// Reads the NUL-terminated UTF-8 string at the start of the block
    /// (what C left in a buffer the host allocated); the NUL must be inside
    /// the block.
    pub fn read_string(&self) -> Result<String> {
        let bytes = self.read_bytes(0, self.byte_len())?;
        let addr = self.ptr.addr();
        let Some(end) = bytes.iter().position(|&b| b == 0) else {
            return Err(Error::Unterminated {
                function: None,
                address: addr,
                limit: self.byte_len(),
            });
        };
        String::from_utf8(bytes[..end].to_vec()).map_err(|e| Error::InvalidUtf8 {
            function: None,
            what: format!("the string in the block at {addr:#x}"),
            address: addr,
            reason: e.to_string(),
        })
    }

    /// Gives the block to C: it will not be freed by this handle. Free it
    /// again only with [`Foreign::free`], under that function's contract.
    pub fn into_raw(mut self) -> Ptr<T> {
        self.owns = false;
        self.ptr
    }

    /// Frees the block now, reporting a failure that dropping would ignore.
    pub fn free(mut self) -> Result<()> {
        self.owns = false;
        self.release()
    }

    fn release(&self) -> Result<()> {
        // A block from before a reset went with the old instance: freeing
        // its address would free someone else's block in the new one.
        if self.ptr.addr_in(st(&self.lib), String::new).is_err() {
            return Ok(());
        }
        // SAFETY: the block came from this library's allocator in this
        // generation, and this handle still owns it (`owns` is cleared
        // before the only other call path, and `Drop` runs once).
        unsafe { st(&self.lib).free_raw(self.ptr.addr()) }
    }
}

impl<L: Foreign, T> Drop for Owned<L, T> {
    fn drop(&mut self) {
        if self.owns {
            // A poisoned sandbox cannot free; its memory goes at reset.
            let _ = self.release();
        }
    }
}

impl<L: Foreign, T> std::fmt::Debug for Owned<L, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Owned({:?})", self.ptr)
    }
}

/// A C function bound with a type: call it with Rust values.
pub struct Function<L: Foreign, A: Params, R: Shadow> {
    lib: L,
    name: Arc<str>,
    ty: FnType<A, R>,
    func: FuncOf<L>,
    /// `func`'s code, when calls go through a typed pointer (see
    /// [`crate::strategy::Strategy::direct_code`]).
    direct: Option<unsafe extern "C" fn()>,
}

impl<L: Foreign, A: Params, R: Shadow> Function<L, A, R> {
    /// A bound function around what the strategy resolved.
    fn new(lib: &L, name: &str, ty: &FnType<A, R>, func: FuncOf<L>) -> Self {
        // A typed pointer call when the strategy offers one and every type
        // is a plain scalar whose Rust type is exactly its C type.
        let model = lib.model();
        let direct = st(lib).direct_code(&func).filter(|_| {
            A::direct_ok(&ty.args, model)
                && <R::Direct as Direct>::USABLE
                && <R::Direct as Direct>::matches(ty.ret.desc().scalar(), model)
        });
        Function {
            lib: lib.clone(),
            name: name.into(),
            ty: ty.clone(),
            func,
            direct,
        }
    }

    /// Calls the function. Arguments are a tuple: `f.call(("hi", 3))`.
    pub fn call<'a>(&self, args: A::In<'a>) -> Result<R::Out> {
        self.call_inner(args).map(|(r, _)| r)
    }

    /// Calls the function and returns the `errno` it left. The type must be
    /// built with [`crate::types::returning_errno`].
    pub fn call_errno<'a>(&self, args: A::In<'a>) -> Result<(R::Out, i32)> {
        let (r, errno) = self.call_inner(args)?;
        let errno = errno.ok_or_else(|| Error::Usage {
            function: Some(self.name.to_string()),
            what: "call_errno".into(),
            reason: "the function was bound with `returning`, not `returning_errno`, so \
                         errno is not captured"
                .into(),
        })?;
        Ok((r, errno))
    }

    fn call_inner<'a>(&self, args: A::In<'a>) -> Result<(R::Out, Option<i32>)> {
        let name = &*self.name;
        let mem: &dyn Memory = st(&self.lib);
        if let Some(code) = self.direct {
            let (lib, func) = (st(&self.lib), &self.func);
            // SAFETY: `code` is `func`'s, from `direct_code`; `function`
            // checked that every argument's and the result's `Direct` type
            // is exactly its declared C type, and the declaration is the
            // library's (the promise of opening a non-isolated library, the
            // only kind that offers direct calls). `invoke_direct` is given
            // a closure that calls only that code, with those arguments.
            let ret = unsafe {
                A::call_direct::<R>(&self.ty.args, args, mem, code, &mut |call| {
                    lib.invoke_direct(func, call)
                })
            }
            .map_err(|e| e.in_call(name))?;
            // SAFETY: the word of the value the library returned for `ty`'s
            // return type.
            let out = unsafe { R::lift(&self.ty.ret, ret.as_slice(), mem, Site::Return) }
                .map_err(|e| e.in_call(name))?;
            return Ok((out, None));
        }
        let mut frame = Frame::for_call(mem);
        A::lower(&self.ty.args, args, &mut frame).map_err(|e| e.in_call(name))?;
        // SAFETY: `func` was resolved by this library for `ty`'s signature,
        // and the words were lowered for it on a live frame of this library.
        let (ret, errno) = unsafe { st(&self.lib).invoke(&self.func, frame.words()) }
            .map_err(|e| e.in_call(name))?;
        // Lift before the temporaries go: the result may point into them.
        // SAFETY: the library returned these words for `ty`'s return type.
        let out = unsafe { R::lift(&self.ty.ret, ret.as_slice(), mem, Site::Return) }
            .map_err(|e| e.in_call(name))?;
        frame.finish().map_err(|e| e.in_call(name))?;
        Ok((out, errno))
    }

    /// The C name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether calls go straight through a typed `extern "C"` pointer (a
    /// strategy running native code, with every argument and the result a
    /// plain scalar whose Rust type is exactly its C type; on Stubs, a
    /// function whose type the C compiler found to be the declared one)
    /// rather than through the strategy's general path (libffi for
    /// Dynamic, the generated wrapper for Stubs).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The function's type.
    pub fn fn_type(&self) -> &FnType<A, R> {
        &self.ty
    }

    /// The C prototype, e.g. `int puts(char *)`.
    pub fn c_prototype(&self) -> String {
        self.ty.sig().c_prototype(&self.name)
    }
}

impl<L: Foreign, A: Params, R: Shadow> Clone for Function<L, A, R> {
    fn clone(&self) -> Self {
        Function {
            lib: self.lib.clone(),
            name: self.name.clone(),
            ty: self.ty.clone(),
            func: self.func.clone(),
            direct: self.direct,
        }
    }
}

impl<L: Foreign, A: Params, R: Shadow> std::fmt::Debug for Function<L, A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Function({})", self.c_prototype())
    }
}

/// A Rust closure callable from C. C may call it until this is dropped.
///
/// It belongs to the library that made it (across that library's resets):
/// passing it to another library is an [`Error::ForeignPointer`], never a
/// jump to an address that means nothing there.
pub struct Callback<A, R> {
    addr: u64,
    brand: Brand,
    _guard: Box<dyn Any + Send + Sync>,
    _t: PhantomData<fn(A) -> R>,
}

impl<A, R> Callback<A, R> {
    /// The handle of what `make_callback` (or `make_batched_callback`) of
    /// library `mem` made: its address and the guard that releases it.
    fn made(mem: &dyn Memory, (addr, guard): (u64, Box<dyn Any + Send + Sync>)) -> Self {
        Callback {
            addr,
            brand: mem.brand(),
            _guard: guard,
            _t: PhantomData,
        }
    }

    /// The function pointer C calls, in the library's address space.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The address, if the call being lowered is into this callback's library.
    pub(crate) fn addr_in(&self, f: &Frame<'_, '_>) -> Result<u64> {
        self.addr_for(f.memory(), f.site())
    }

    /// The address, if `mem` is this callback's library; `site` names the use.
    pub(crate) fn addr_for(&self, mem: &dyn Memory, site: Site) -> Result<u64> {
        self.brand
            .admit(mem.brand(), self.addr, || site.to_string(), true)?;
        Ok(self.addr)
    }
}

impl<A, R> std::fmt::Debug for Callback<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callback({:#x})", self.addr)
    }
}
