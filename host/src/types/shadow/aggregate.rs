//! Structs, unions and arrays: laid out per data model, read through fields and elements.

use super::*;

/// Shadow of a C struct or union tagged by the Rust type `Tag`. It is used
/// through pointers and fields; it cannot be passed by value.
pub struct Struct<Tag>(PhantomData<fn() -> Tag>, Infallible);

impl<Tag: 'static> crate::types::sealed::Shadow for Struct<Tag> {}
impl<Tag: 'static> Shadow for Struct<Tag> {
    type In<'a> = Infallible;
    type Out = Infallible;
    type Meta = ();
    type Direct = NoDirect;
    fn lower<'a>(_: &Typ<Self>, v: Infallible, _: &mut Frame<'_, 'a>) -> Result<()> {
        match v {}
    }
    unsafe fn lift(t: &Typ<Self>, _: &[Raw], _: &dyn Memory, site: Site) -> Result<Infallible> {
        Err(Error::NotPassable {
            what: site.to_string(),
            c_type: t.c_name(),
            reason: "a struct or union cannot be read by value; read its fields".into(),
        })
    }
}

/// Shadow of a C array `T[n]`: read as a `Vec` of its elements.
pub struct Array<T>(PhantomData<fn() -> T>, Infallible);

impl<T: Shadow> crate::types::sealed::Shadow for Array<T> {}
impl<T: Shadow> Shadow for Array<T> {
    type In<'a> = Infallible;
    type Out = Vec<T::Out>;
    type Meta = (Typ<T>, u64);
    type Direct = NoDirect;
    fn lower<'a>(_: &Typ<Self>, v: Infallible, _: &mut Frame<'_, 'a>) -> Result<()> {
        match v {}
    }
    unsafe fn lift(t: &Typ<Self>, _: &[Raw], _: &dyn Memory, site: Site) -> Result<Vec<T::Out>> {
        Err(Error::NotPassable {
            what: site.to_string(),
            c_type: t.c_name(),
            reason: "an array is not a scalar; read it from memory".into(),
        })
    }
    unsafe fn load(t: &Typ<Self>, addr: u64, mem: &dyn Memory) -> Result<Vec<T::Out>> {
        let (elem, n) = &t.meta;
        let (size, _) = elem.size_align(mem.model())?;
        (0..*n)
            // SAFETY: an array of `n` elements at `addr` (the caller's
            // promise) holds element `i` at `addr + i * size`.
            .map(|i| unsafe { T::load(elem, addr + i * size, mem) })
            .collect()
    }
}

/// A struct being described: add fields, then [`StructBuilder::seal`] it.
/// [`StructBuilder::opaque`] gives an incomplete type usable only behind
/// pointers.
pub struct StructBuilder<Tag> {
    agg: Arc<Aggregate>,
    _t: PhantomData<fn() -> Tag>,
}

/// `struct name`, tagged in Rust by `Tag` (usually an empty enum).
pub fn structure<Tag: 'static>(name: &str) -> StructBuilder<Tag> {
    StructBuilder {
        agg: Arc::new(Aggregate::new(name, false)),
        _t: PhantomData,
    }
}

/// `union name`, tagged in Rust by `Tag`: every field at offset 0.
pub fn union<Tag: 'static>(name: &str) -> StructBuilder<Tag> {
    StructBuilder {
        agg: Arc::new(Aggregate::new(name, true)),
        _t: PhantomData,
    }
}

impl<Tag: 'static> StructBuilder<Tag> {
    /// Appends a field; the returned handle reads and writes it.
    pub fn field<T: Shadow>(&mut self, name: &str, t: Typ<T>) -> Field<Tag, T> {
        let mut fields = match self.agg.fields.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        fields.push((name.to_string(), t.desc.clone()));
        // An anonymous struct or union (or an array of one) is named by
        // this field from now on.
        let (inner, element) = match &*t.desc {
            CType::Array(_, e) => (&**e, true),
            other => (other, false),
        };
        if let CType::Aggregate(a) = inner {
            if a.is_anonymous() {
                let _ = a.spelled.set(Spelling::Field(
                    Arc::downgrade(&self.agg),
                    name.to_string(),
                    element,
                ));
            }
        }
        Field {
            agg: self.agg.clone(),
            index: fields.len() - 1,
            name: name.to_string(),
            typ: t,
            _t: PhantomData,
        }
    }

    /// Completes the type: computes its layout under every data model.
    pub fn seal(self) -> Result<Typ<Struct<Tag>>> {
        let layouts = [
            self.agg.compute_layout(DataModel::Lp64)?,
            self.agg.compute_layout(DataModel::Ilp32)?,
        ];
        // `seal` consumes the only builder, so the cell is still empty.
        let [lp64, ilp32] = layouts;
        let _ = self.agg.layouts.set([Some(lp64), Some(ilp32)]);
        Ok(Typ::new(CType::Aggregate(self.agg)))
    }

    /// Storage of `size` bytes aligned to `align`, as the C compiler laid
    /// out `c_type` for a library of data model `model`: no fields, spelled
    /// `c_type` in C. What [`crate::Foreign::opaque_sized`] makes; with no
    /// size (`None`: the Recorder, before any compiler ran) it is incomplete.
    pub(crate) fn sized(
        c_type: &str,
        model: DataModel,
        size_align: Option<(u64, u64)>,
    ) -> Result<Typ<Struct<Tag>>> {
        let agg = Aggregate::new("", false);
        let _ = agg.spelled.set(Spelling::Typedef(c_type.to_string()));
        let Some((size, align)) = size_align else {
            return Ok(Typ::new(CType::Aggregate(Arc::new(agg))));
        };
        if !align.is_power_of_two() || align > 4096 || !size.is_multiple_of(align) {
            return Err(Error::Layout {
                c_type: c_type.to_string(),
                reason: format!(
                    "the library reports size {size} and alignment {align}, which no C type has"
                ),
            });
        }
        let layout = Layout {
            size,
            align,
            offsets: Vec::new(),
        };
        let _ = agg.layouts.set(match model {
            DataModel::Lp64 => [Some(layout), None],
            DataModel::Ilp32 => [None, Some(layout)],
        });
        Ok(Typ::new(CType::Aggregate(Arc::new(agg))))
    }

    /// Leaves the type incomplete (`struct name;`), usable behind pointers.
    pub fn opaque(self) -> Typ<Struct<Tag>> {
        Typ::new(CType::Aggregate(self.agg))
    }
}

/// A field of a struct or union: its name, type and (once sealed) offsets.
pub struct Field<Tag, T: Shadow> {
    agg: Arc<Aggregate>,
    index: usize,
    name: String,
    typ: Typ<T>,
    _t: PhantomData<fn() -> Tag>,
}

impl<Tag, T: Shadow> Clone for Field<Tag, T> {
    fn clone(&self) -> Self {
        Field {
            agg: self.agg.clone(),
            index: self.index,
            name: self.name.clone(),
            typ: self.typ.clone(),
            _t: PhantomData,
        }
    }
}

impl<Tag, T: Shadow> Field<Tag, T> {
    /// The field's byte offset under `model`.
    pub fn offset(&self, model: DataModel) -> Result<u64> {
        let l = self.agg.layout(model)?;
        l.offsets
            .get(self.index)
            .copied()
            .ok_or_else(|| Error::Layout {
                c_type: self.agg.c_name(),
                reason: format!("field `{}` was added after the type was sealed", self.name),
            })
    }

    /// The field's type.
    pub fn typ(&self) -> &Typ<T> {
        &self.typ
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<Tag: 'static> Typ<Struct<Tag>> {
    /// The layout under `model` (an error for an opaque type).
    pub fn layout(&self, model: DataModel) -> Result<crate::types::Layout> {
        match &*self.desc {
            CType::Aggregate(a) => a.layout(model).cloned(),
            other => Err(Error::Layout {
                c_type: other.c_name(),
                reason: "not a struct or union".into(),
            }),
        }
    }
}
