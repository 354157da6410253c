//! The part of Lua's C API the example uses, as Sandlink values.

use sandlink::types::*;
use sandlink::{Foreign, Function, Ptr, Result};

/// Tag for `lua_State`, which Lua keeps opaque.
pub enum LuaState {}

/// A `lua_State *`.
pub type State = Ptr<Struct<LuaState>>;

/// `lua_KFunction`, a continuation: always NULL here.
pub type KFunction = FunPtr<(State, i32, i64), i32>;

/// `LUA_OK`.
pub const OK: i32 = 0;
/// `LUA_ERRMEM`: a memory allocation failed.
pub const ERRMEM: i32 = 4;
/// `LUA_MULTRET`.
pub const MULTRET: i32 = -1;

/// Lua's functions, bound with strategy `L`.
pub struct Lua<L: Foreign> {
    /// `lua_State *luaL_newstate(void)`: NULL when out of memory.
    pub new_state: Function<L, (), Option<State>>,
    /// `void luaL_openlibs(lua_State *L)`.
    pub open_libs: Function<L, (State,), ()>,
    /// `int luaL_loadstring(lua_State *L, const char *s)`.
    pub load_string: Function<L, (State, String), i32>,
    /// `int lua_pcallk(lua_State *L, int nargs, int nresults, int errfunc,
    /// lua_KContext ctx, lua_KFunction k)`: `lua_pcall` is this with no
    /// continuation.
    pub pcallk: Function<L, (State, i32, i32, i32, i64, Option<KFunction>), i32>,
    /// `int lua_gettop(lua_State *L)`.
    pub get_top: Function<L, (State,), i32>,
    /// `void lua_settop(lua_State *L, int idx)`.
    pub set_top: Function<L, (State, i32), ()>,
    /// `const char *luaL_tolstring(lua_State *L, int idx, size_t *len)`:
    /// any value as text (`tostring`), pushed on the stack.
    pub to_display: Function<L, (State, i32, Option<Ptr<u64>>), String>,
    /// `void lua_close(lua_State *L)`.
    pub close: Function<L, (State,), ()>,
}

impl<L: Foreign> Lua<L> {
    /// Binds every function in `lib`; fails on the first missing or
    /// mismatched one.
    pub fn bind(lib: &L) -> Result<Self> {
        let state = ptr(structure::<LuaState>("lua_State").opaque());
        let kcontext = typedef(intptr_t(), "lua_KContext");
        let kfunction = typedef(
            funptr_opt(state.clone() >> int() >> kcontext.clone() >> returning(int())),
            "lua_KFunction",
        );
        let text = const_(string());
        Ok(Lua {
            new_state: lib.function(
                "luaL_newstate",
                &(void() >> returning(ptr_opt(structure::<LuaState>("lua_State").opaque()))),
            )?,
            open_libs: lib.function("luaL_openlibs", &(state.clone() >> returning(void())))?,
            load_string: lib.function(
                "luaL_loadstring",
                &(state.clone() >> text.clone() >> returning(int())),
            )?,
            pcallk: lib.function(
                "lua_pcallk",
                &(state.clone()
                    >> int()
                    >> int()
                    >> int()
                    >> kcontext
                    >> kfunction
                    >> returning(int())),
            )?,
            get_top: lib.function("lua_gettop", &(state.clone() >> returning(int())))?,
            set_top: lib.function("lua_settop", &(state.clone() >> int() >> returning(void())))?,
            to_display: lib.function(
                "luaL_tolstring",
                &(state.clone() >> int() >> ptr_opt(size_t()) >> returning(text)),
            )?,
            close: lib.function("lua_close", &(state >> returning(void())))?,
        })
    }
}
