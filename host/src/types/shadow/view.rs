//! [`view`]: a C scalar seen from Rust as another type.

use super::*;

/// Shadow of a [`view`]: a C scalar `B` seen from Rust as a `V`.
pub struct View<V, B>(PhantomData<fn(B) -> V>, Infallible);

type ViewRead<V, B> =
    Arc<dyn Fn(<B as Shadow>::Out) -> std::result::Result<V, String> + Send + Sync>;
type ViewWrite<V, B> = Arc<dyn Fn(&V) -> <B as Shadow>::Out + Send + Sync>;

/// Conversions of a [`view`].
pub struct ViewMeta<V, B: Shadow> {
    base: Typ<B>,
    read: ViewRead<V, B>,
    write: ViewWrite<V, B>,
}

impl<V, B: Shadow> Clone for ViewMeta<V, B> {
    fn clone(&self) -> Self {
        ViewMeta {
            base: self.base.clone(),
            read: self.read.clone(),
            write: self.write.clone(),
        }
    }
}

impl<V: 'static, B: Scalar> crate::types::sealed::Shadow for View<V, B> {}
impl<V: 'static, B: Scalar> Shadow for View<V, B> {
    type In<'a> = V;
    type Out = V;
    type Meta = ViewMeta<V, B>;
    type Direct = NoDirect;
    fn lower<'a>(t: &Typ<Self>, v: V, f: &mut Frame<'_, 'a>) -> Result<()> {
        let b = (t.meta.write)(&v);
        B::lower(&t.meta.base, B::to_in(b), f)
    }
    unsafe fn lift(t: &Typ<Self>, raws: &[Raw], mem: &dyn Memory, site: Site) -> Result<V> {
        // SAFETY: a view's words are its base type's words (same contract).
        let b = unsafe { B::lift(&t.meta.base, raws, mem, site) }?;
        (t.meta.read)(b).map_err(|reason| Error::InvalidValue {
            function: None,
            what: format!("{site} (view of `{}`)", t.c_name()),
            reason,
        })
    }
}

impl<V: 'static, B: Scalar> Scalar for View<V, B> {
    fn to_in<'a>(v: V) -> Self::In<'a> {
        v
    }
}

/// A custom conversion: the C scalar `base` seen from Rust as a `V`. `read`
/// may reject a value from the library (a bad enum tag, say) with a reason.
pub fn view<V: 'static, B: Scalar>(
    base: Typ<B>,
    read: impl Fn(B::Out) -> std::result::Result<V, String> + Send + Sync + 'static,
    write: impl Fn(&V) -> B::Out + Send + Sync + 'static,
) -> Typ<View<V, B>> {
    let desc = Arc::new(CType::View(base.desc.clone()));
    Typ::from_arc(
        desc,
        ViewMeta {
            base,
            read: Arc::new(read),
            write: Arc::new(write),
        },
    )
}
