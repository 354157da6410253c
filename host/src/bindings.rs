//! Bindings written the way a C header reads: [`bindings!`](crate::bindings).
//!
//! Each C type is written once, in a small grammar that mirrors the type
//! constructors; the macro derives both the Rust field type
//! (`Function<L, (Ptr<Struct<ZStream>>, i32), i32>`) and the description
//! (`ptr(…) >> int() >> returning(int())`) from it. `sandlink-build`'s header
//! generator emits the same form.

use crate::error::Result;
use crate::types::{Shadow, Typ};

/// A C type declared by name in [`bindings!`](crate::bindings): a struct, a
/// union, an opaque (incomplete) struct or a type alias. The macro
/// implements it; a hand-written impl lets the grammar name a type it
/// cannot spell (a [`view`](crate::types::view), say).
///
/// C allows a struct to point at itself (`struct node { struct node *next; }`).
/// A description cannot contain itself, so inside a struct's fields a
/// named type behind a pointer is described by [`Named::behind_pointer`]:
/// for a struct, an incomplete declaration with the same tag and C name,
/// as C itself sees it there.
pub trait Named: 'static {
    /// The Rust shadow type: `Struct<Tag>` for a struct or union, the
    /// aliased type's for an alias.
    type Shadow: Shadow;

    /// The full description.
    fn typ() -> Result<Typ<Self::Shadow>>;

    /// The description as a struct field's type: [`Named::typ`], with the
    /// named types behind its pointers described by
    /// [`Named::behind_pointer`].
    fn in_field() -> Result<Typ<Self::Shadow>> {
        Self::typ()
    }

    /// The description behind a pointer inside a struct's fields: a struct
    /// is incomplete there (`structure::<Tag>(name).opaque()`).
    fn behind_pointer() -> Result<Typ<Self::Shadow>> {
        Self::in_field()
    }
}

/// Bindings written the way a C header reads: each function's C types once,
/// the Rust field types derived from them.
///
/// ```
/// use sandlink::prelude::*;
///
/// sandlink::bindings! {
///     /// `struct point { int x; int y; }`.
///     pub struct Point = "point" {
///         /// `int x`.
///         pub x: int,
///         /// `int y`.
///         pub y: int,
///     }
///     /// `typedef struct point *point_p;`
///     pub type point_p = typedef("point_p", ptr(Point));
///     /// `struct list { struct list *next; }`: points at itself.
///     pub struct List = "list" {
///         /// `struct list *next`.
///         pub next: ptr_opt(List),
///     }
///     /// `struct handle;`: incomplete, used only behind pointers.
///     pub struct Handle = "handle";
///
///     /// `void (*)(void *, int)`: a callback type.
///     pub type visitor = funptr(fn(ptr_opt(void), int) -> void);
///
///     /// The library's functions.
///     pub struct Lib<L> {
///         type {
///             /// The callback type, to make callbacks with.
///             visitor = visitor;
///         }
///         /// `size_t strlen(const char *)`.
///         pub fn strlen(string) -> size_t;
///         /// `int abs(int)`, bound under another Rust name.
///         pub fn absolute = "abs"(int) -> int;
///         /// `void move_point(point_p, int dx, int dy)`.
///         pub fn move_point(point_p, int, int) -> void;
///         /// `void each(void (*f)(void *, int), void *)`.
///         pub fn each(funptr(fn(ptr_opt(void), int) -> void), ptr_opt(void)) -> void;
///         /// `void set_visitor(void (*f)(void *, int))`, NULL to clear.
///         pub fn set_visitor(funptr_opt(visitor)) -> void;
///     }
/// }
///
/// # fn main() -> sandlink::Result<()> {
/// let rec = sandlink::record::Recorder::new("lib");
/// // The Rust types were derived from the C ones:
/// let _: &Function<_, (String,), u64> = &Lib::bind(&rec)?.strlen;
/// let _: &Typ<FunPtr<(Option<Ptr<()>>, i32), ()>> = &Lib::bind(&rec)?.visitor;
/// let _: &Function<_, (Ptr<Struct<Point>>, i32, i32), ()> = &Lib::bind(&rec)?.move_point;
/// let (point, fields) = Point::describe()?;
/// assert_eq!(point.size_align(DataModel::Lp64)?, (8, 4));
/// let _: &Field<Point, i32> = &fields.y;
/// // A struct pointing at itself is described through a forward declaration.
/// let (list, _) = List::describe()?;
/// assert_eq!(list.size_align(DataModel::Ilp32)?, (4, 4));
/// // The recorder saw `struct point`'s layout through `point_p`, for the
/// // stubs' check against the header.
/// let spec = rec.spec()?;
/// assert!(spec.layouts.iter().any(|l| l.c_type == "struct point"));
/// # Ok(()) }
/// ```
///
/// # Items
///
/// - **A binding struct**, `pub struct Name<L> { … }`: one `pub fn` per C
///   function, `pub fn rust_name = "c_name"(arg types) -> result type;`
///   (the C name defaults to the Rust one; every field is public), at most
///   ten arguments. It becomes
///   a struct generic over `L: Foreign` with a `lib: L` field and one
///   [`Function`](crate::Function) field per function, and
///   `Name::bind(&lib)`, which binds them all and fails on the first
///   missing or mismatched one. It is `Clone` (a clone shares the bound
///   functions); `#[derive]` cannot be used on it, as its field types are
///   macro-expanded. Before the functions, a
///   `type { name = type; … }` block adds `Typ` fields: the callback types
///   a user makes callbacks with, say.
/// - **A struct or union**, `pub struct Tag = "c_tag" { field: type, … }`
///   (`union` for a union; `"c_tag"` empty for an untagged one named by a
///   `typedef`). `Tag` is both the struct's tag (`Ptr<Struct<Tag>>`) and a
///   struct of its field handles; `Tag::describe()` gives the sealed
///   description and the handles. A field whose C name is not a Rust
///   identifier is written `rust_name = "c_name": type`.
/// - **An incomplete struct or union**, `pub struct Tag = "c_tag";`
///   (`union`): usable behind pointers only.
/// - **A type alias**, `pub type name = type;`: usually a `typedef`
///   (`typedef("uLong", ulong)`) or a callback type (`funptr(fn(…) -> …)`).
///
/// Every item implements [`Named`], so any later type can name it.
///
/// # Types
///
/// The scalars by their constructor's name (`int`, `ulong`, `size_t`,
/// `double`, `void`, …), `string`, `string_opt`, `buffer`, `buffer_int`,
/// `buffer_len(len type)`, `buffer_mut`, `buffer_mut_len(len type)`,
/// `bytes_ref`, `bytes_ref_int`, `ptr(t)`, `ptr_opt(t)`, `const_(t)`,
/// `typedef("name", t)`, `array(n, t)`, `str_ref(t)`, `str_ref_opt(t)`,
/// `str_owned(t)`, `str_owned_opt(t)`, `str_array_ref(t)`,
/// `funptr(fn(args) -> result)`, `funptr_opt(…)` (also of a named callback
/// type: `funptr_opt(handler)`), and a named item (or any
/// type implementing [`Named`]) by its name. Each means what the
/// constructor of the same name in [`crate::types`] means.
#[macro_export]
macro_rules! bindings {
    () => {};
    (
        $(#[$m:meta])*
        $v:vis struct $S:ident < $L:ident > {
            $(
                type {
                    $(
                        $(#[$tm:meta])*
                        $t:ident = $tk:ident $(( $($ti:tt)* ))? ;
                    )*
                }
            )?
            $(
                $(#[$fm:meta])*
                pub fn $f:ident $(= $c:literal)?
                    ( $($ak:ident $(( $($ai:tt)* ))?),* $(,)? )
                    -> $rk:ident $(( $($ri:tt)* ))? ;
            )*
        }
        $($rest:tt)*
    ) => {
        $(#[$m])*
        #[allow(non_snake_case)]
        $v struct $S<$L: $crate::Foreign> {
            /// The library the functions are bound in.
            pub lib: $L,
            $($(
                $(#[$tm])*
                pub $t: $crate::types::Typ<$crate::__sandlink_ty!($tk $(($($ti)*))?)>,
            )*)?
            $(
                $(#[$fm])*
                pub $f: $crate::Function<
                    $L,
                    ($($crate::__sandlink_ty!($ak $(($($ai)*))?),)*),
                    $crate::__sandlink_ty!($rk $(($($ri)*))?),
                >,
            )*
        }

        impl<$L: $crate::Foreign> ::std::clone::Clone for $S<$L> {
            fn clone(&self) -> Self {
                $S {
                    lib: self.lib.clone(),
                    $($($t: self.$t.clone(),)*)?
                    $($f: self.$f.clone(),)*
                }
            }
        }

        impl<$L: $crate::Foreign> $S<$L> {
            /// Binds every function in `lib`; fails on the first missing or
            /// mismatched one.
            #[allow(unused_imports)]
            pub fn bind(lib: &$L) -> $crate::Result<Self> {
                use $crate::types::Named as _;
                Ok($S {
                    $($(
                        $t: $crate::__sandlink_val!(full; $tk $(($($ti)*))?),
                    )*)?
                    $(
                        $f: lib.function(
                            [$($c,)? stringify!($f)][0],
                            &$crate::__sandlink_val!(@fn full;
                                ($($ak $(($($ai)*))?),*) -> $rk $(($($ri)*))?),
                        )?,
                    )*
                    lib: lib.clone(),
                })
            }
        }
        $crate::bindings!($($rest)*);
    };
    (
        $(#[$m:meta])*
        $v:vis struct $T:ident = $c:literal ;
        $($rest:tt)*
    ) => {
        $crate::__sandlink_incomplete!(structure; $(#[$m])* $v $T = $c);
        $crate::bindings!($($rest)*);
    };
    (
        $(#[$m:meta])*
        $v:vis union $T:ident = $c:literal ;
        $($rest:tt)*
    ) => {
        $crate::__sandlink_incomplete!(union; $(#[$m])* $v $T = $c);
        $crate::bindings!($($rest)*);
    };
    (
        $(#[$m:meta])*
        $v:vis struct $T:ident = $c:literal { $($body:tt)* }
        $($rest:tt)*
    ) => {
        $crate::__sandlink_aggregate!(structure; $(#[$m])* $v $T = $c { $($body)* });
        $crate::bindings!($($rest)*);
    };
    (
        $(#[$m:meta])*
        $v:vis union $T:ident = $c:literal { $($body:tt)* }
        $($rest:tt)*
    ) => {
        $crate::__sandlink_aggregate!(union; $(#[$m])* $v $T = $c { $($body)* });
        $crate::bindings!($($rest)*);
    };
    (
        $(#[$m:meta])*
        $v:vis type $T:ident = $k:ident $(( $($i:tt)* ))? ;
        $($rest:tt)*
    ) => {
        $(#[$m])*
        #[allow(non_camel_case_types)]
        $v enum $T {}
        impl $crate::types::Named for $T {
            type Shadow = $crate::__sandlink_ty!($k $(($($i)*))?);
            #[allow(unused_imports)]
            fn typ() -> $crate::Result<$crate::types::Typ<Self::Shadow>> {
                use $crate::types::Named as _;
                Ok($crate::__sandlink_val!(full; $k $(($($i)*))?))
            }
            #[allow(unused_imports)]
            fn in_field() -> $crate::Result<$crate::types::Typ<Self::Shadow>> {
                use $crate::types::Named as _;
                Ok($crate::__sandlink_val!(field; $k $(($($i)*))?))
            }
            #[allow(unused_imports)]
            fn behind_pointer() -> $crate::Result<$crate::types::Typ<Self::Shadow>> {
                use $crate::types::Named as _;
                Ok($crate::__sandlink_val!(behind; $k $(($($i)*))?))
            }
        }
        $crate::bindings!($($rest)*);
    };
}

/// [`bindings!`]'s incomplete structs and unions.
#[doc(hidden)]
#[macro_export]
macro_rules! __sandlink_incomplete {
    ($ctor:ident; $(#[$m:meta])* $v:vis $T:ident = $c:literal) => {
        $(#[$m])*
        #[allow(non_camel_case_types)]
        $v enum $T {}
        impl $crate::types::Named for $T {
            type Shadow = $crate::types::Struct<$T>;
            fn typ() -> $crate::Result<$crate::types::Typ<Self::Shadow>> {
                Ok($crate::types::$ctor::<$T>($c).opaque())
            }
        }
    };
}

/// [`bindings!`]'s structs and unions.
#[doc(hidden)]
#[macro_export]
macro_rules! __sandlink_aggregate {
    (
        $ctor:ident;
        $(#[$m:meta])*
        $v:vis $T:ident = $c:literal {
            $(
                $(#[$fm:meta])*
                $fv:vis $f:ident $(= $fc:literal)? : $k:ident $(( $($i:tt)* ))?
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[allow(non_camel_case_types, non_snake_case)]
        $v struct $T {
            $(
                $(#[$fm])*
                $fv $f: $crate::types::Field<$T, $crate::__sandlink_ty!($k $(($($i)*))?)>,
            )*
        }
        impl $T {
            /// The sealed description, and a handle per field.
            #[allow(unused_imports)]
            pub fn describe(
            ) -> $crate::Result<($crate::types::Typ<$crate::types::Struct<$T>>, $T)> {
                use $crate::types::Named as _;
                let mut s = $crate::types::$ctor::<$T>($c);
                let fields = $T {
                    $(
                        $f: s.field(
                            [$($fc,)? stringify!($f)][0],
                            $crate::__sandlink_val!(field; $k $(($($i)*))?),
                        ),
                    )*
                };
                Ok((s.seal()?, fields))
            }
        }
        impl $crate::types::Named for $T {
            type Shadow = $crate::types::Struct<$T>;
            fn typ() -> $crate::Result<$crate::types::Typ<Self::Shadow>> {
                Ok($T::describe()?.0)
            }
            fn behind_pointer() -> $crate::Result<$crate::types::Typ<Self::Shadow>> {
                Ok($crate::types::$ctor::<$T>($c).opaque())
            }
        }
    };
}

/// [`bindings!`]'s type grammar, to the Rust shadow type.
#[doc(hidden)]
#[macro_export]
macro_rules! __sandlink_ty {
    (void) => { () };
    (bool) => { bool };
    (char) => { i8 };
    (schar) => { i8 };
    (uchar) => { u8 };
    (short) => { i16 };
    (ushort) => { u16 };
    (int) => { i32 };
    (uint) => { u32 };
    (long) => { i64 };
    (ulong) => { u64 };
    (llong) => { i64 };
    (ullong) => { u64 };
    (int8_t) => { i8 };
    (int16_t) => { i16 };
    (int32_t) => { i32 };
    (int64_t) => { i64 };
    (uint8_t) => { u8 };
    (uint16_t) => { u16 };
    (uint32_t) => { u32 };
    (uint64_t) => { u64 };
    (size_t) => { u64 };
    (ssize_t) => { i64 };
    (intptr_t) => { i64 };
    (uintptr_t) => { u64 };
    (ptrdiff_t) => { i64 };
    (float) => { f32 };
    (double) => { f64 };
    (string) => { ::std::string::String };
    (string_opt) => { ::std::option::Option<::std::string::String> };
    (buffer) => { $crate::types::Buffer };
    (buffer_int) => { $crate::types::Buffer };
    (buffer_len($($t:tt)*)) => { $crate::types::Buffer };
    (buffer_mut) => { $crate::types::BufferMut };
    (buffer_mut_len($($t:tt)*)) => { $crate::types::BufferMut };
    (bytes_ref) => { $crate::types::BytesRef };
    (bytes_ref_int) => { $crate::types::BytesRef };
    (str_ref($($t:tt)*)) => { $crate::types::StrRef };
    (str_ref_opt($($t:tt)*)) => { ::std::option::Option<$crate::types::StrRef> };
    (str_owned($($t:tt)*)) => { $crate::types::OwnedStr };
    (str_owned_opt($($t:tt)*)) => { ::std::option::Option<$crate::types::OwnedStr> };
    (str_array_ref($($t:tt)*)) => { $crate::types::StrArrayRef };
    (ptr($($t:tt)*)) => { $crate::types::Ptr<$crate::__sandlink_ty!($($t)*)> };
    (ptr_opt($($t:tt)*)) => {
        ::std::option::Option<$crate::types::Ptr<$crate::__sandlink_ty!($($t)*)>>
    };
    (const_($($t:tt)*)) => { $crate::__sandlink_ty!($($t)*) };
    (typedef($n:literal, $($t:tt)*)) => { $crate::__sandlink_ty!($($t)*) };
    (array($n:expr, $($t:tt)*)) => { $crate::types::Array<$crate::__sandlink_ty!($($t)*)> };
    (funptr(fn($($ak:ident $(( $($ai:tt)* ))?),* $(,)?) -> $rk:ident $(( $($ri:tt)* ))?)) => {
        $crate::types::FunPtr<
            ($($crate::__sandlink_ty!($ak $(($($ai)*))?),)*),
            $crate::__sandlink_ty!($rk $(($($ri)*))?),
        >
    };
    (funptr_opt(fn $($t:tt)*)) => {
        ::std::option::Option<$crate::__sandlink_ty!(funptr(fn $($t)*))>
    };
    (funptr_opt($n:ident)) => { ::std::option::Option<<$n as $crate::types::Named>::Shadow> };
    ($n:ident) => { <$n as $crate::types::Named>::Shadow };
}

/// [`bindings!`]'s type grammar, to the description. The mode says where
/// the type sits: `full` in a function's signature, `field` in a struct's
/// field, `behind` behind a pointer in a struct's field (where a struct is
/// incomplete).
#[doc(hidden)]
#[macro_export]
macro_rules! __sandlink_val {
    (@fn $m:ident; ($(void)?) -> $rk:ident $(( $($ri:tt)* ))?) => {
        $crate::types::void()
            >> $crate::types::returning($crate::__sandlink_val!($m; $rk $(($($ri)*))?))
    };
    (@fn $m:ident; ($($ak:ident $(( $($ai:tt)* ))?),+ $(,)?) -> $rk:ident $(( $($ri:tt)* ))?) => {
        $($crate::__sandlink_val!($m; $ak $(($($ai)*))?) >>)+
            $crate::types::returning($crate::__sandlink_val!($m; $rk $(($($ri)*))?))
    };
    // Behind a pointer: `full` stays full, a field's pointee is `behind`.
    (@under full; $($t:tt)*) => { $crate::__sandlink_val!(full; $($t)*) };
    (@under $m:ident; $($t:tt)*) => { $crate::__sandlink_val!(behind; $($t)*) };
    ($m:ident; void) => { $crate::types::Typ::<()>::from($crate::types::void()) };
    ($m:ident; bool) => { $crate::types::bool() };
    ($m:ident; char) => { $crate::types::char() };
    ($m:ident; schar) => { $crate::types::schar() };
    ($m:ident; uchar) => { $crate::types::uchar() };
    ($m:ident; short) => { $crate::types::short() };
    ($m:ident; ushort) => { $crate::types::ushort() };
    ($m:ident; int) => { $crate::types::int() };
    ($m:ident; uint) => { $crate::types::uint() };
    ($m:ident; long) => { $crate::types::long() };
    ($m:ident; ulong) => { $crate::types::ulong() };
    ($m:ident; llong) => { $crate::types::llong() };
    ($m:ident; ullong) => { $crate::types::ullong() };
    ($m:ident; int8_t) => { $crate::types::int8_t() };
    ($m:ident; int16_t) => { $crate::types::int16_t() };
    ($m:ident; int32_t) => { $crate::types::int32_t() };
    ($m:ident; int64_t) => { $crate::types::int64_t() };
    ($m:ident; uint8_t) => { $crate::types::uint8_t() };
    ($m:ident; uint16_t) => { $crate::types::uint16_t() };
    ($m:ident; uint32_t) => { $crate::types::uint32_t() };
    ($m:ident; uint64_t) => { $crate::types::uint64_t() };
    ($m:ident; size_t) => { $crate::types::size_t() };
    ($m:ident; ssize_t) => { $crate::types::ssize_t() };
    ($m:ident; intptr_t) => { $crate::types::intptr_t() };
    ($m:ident; uintptr_t) => { $crate::types::uintptr_t() };
    ($m:ident; ptrdiff_t) => { $crate::types::ptrdiff_t() };
    ($m:ident; float) => { $crate::types::float() };
    ($m:ident; double) => { $crate::types::double() };
    ($m:ident; string) => { $crate::types::string() };
    ($m:ident; string_opt) => { $crate::types::string_opt() };
    ($m:ident; buffer) => { $crate::types::buffer() };
    ($m:ident; buffer_int) => { $crate::types::buffer_int() };
    ($m:ident; buffer_len($($t:tt)*)) => {
        $crate::types::buffer().len_type(&$crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; buffer_mut) => { $crate::types::buffer_mut() };
    ($m:ident; buffer_mut_len($($t:tt)*)) => {
        $crate::types::buffer_mut().len_type(&$crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; bytes_ref) => { $crate::types::bytes_ref() };
    ($m:ident; bytes_ref_int) => { $crate::types::bytes_ref_int() };
    ($m:ident; str_ref($($t:tt)*)) => {
        $crate::types::str_ref($crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; str_ref_opt($($t:tt)*)) => {
        $crate::types::str_ref_opt($crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; str_owned($($t:tt)*)) => {
        $crate::types::str_owned($crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; str_owned_opt($($t:tt)*)) => {
        $crate::types::str_owned_opt($crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; str_array_ref($($t:tt)*)) => {
        $crate::types::str_array_ref($crate::__sandlink_val!($m; $($t)*))
    };
    ($m:ident; ptr($($t:tt)*)) => {
        $crate::types::ptr($crate::__sandlink_val!(@under $m; $($t)*))
    };
    ($m:ident; ptr_opt($($t:tt)*)) => {
        $crate::types::ptr_opt($crate::__sandlink_val!(@under $m; $($t)*))
    };
    ($m:ident; const_($($t:tt)*)) => { $crate::types::const_($crate::__sandlink_val!($m; $($t)*)) };
    ($m:ident; typedef($n:literal, $($t:tt)*)) => {
        $crate::types::typedef($crate::__sandlink_val!($m; $($t)*), $n)
    };
    ($m:ident; array($n:expr, $($t:tt)*)) => {
        $crate::types::array($n, $crate::__sandlink_val!($m; $($t)*))
    };
    // A callback's own arguments are never inside the struct being
    // described: a field's function pointer describes them as `behind`.
    ($m:ident; funptr(fn $($sig:tt)*)) => {
        $crate::types::funptr($crate::__sandlink_val!(@under $m; @fn_sig $($sig)*))
    };
    ($m:ident; funptr_opt(fn $($sig:tt)*)) => {
        $crate::types::funptr_opt($crate::__sandlink_val!(@under $m; @fn_sig $($sig)*))
    };
    // A named callback type, NULL allowed where it is used.
    ($m:ident; funptr_opt($n:ident)) => {
        $crate::types::funptr_opt(
            $crate::__sandlink_val!(@under $m; $n).fn_type().clone()
        )
    };
    ($m:ident; @fn_sig $($sig:tt)*) => { $crate::__sandlink_val!(@fn $m; $($sig)*) };
    (full; $n:ident) => { <$n as $crate::types::Named>::typ()? };
    (field; $n:ident) => { <$n as $crate::types::Named>::in_field()? };
    (behind; $n:ident) => { <$n as $crate::types::Named>::behind_pointer()? };
}
