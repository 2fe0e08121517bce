//! The ANSI codes of Salt's `salt.utils.color.get_colors()` that the outputters use; each
//! starts with a reset (`0;`), as Salt's `TextFormat` writes them. Without colour every code is
//! empty, as `get_colors(False)` makes them.

/// The colours one rendering uses.
pub(super) struct Palette {
    pub cyan: &'static str,
    pub green: &'static str,
    pub red: &'static str,
    pub light_red: &'static str,
    pub light_yellow: &'static str,
    pub endc: &'static str,
}

const COLORS: Palette = Palette {
    cyan: "\x1b[0;36m",
    green: "\x1b[0;32m",
    red: "\x1b[0;31m",
    light_red: "\x1b[0;1;31m",
    light_yellow: "\x1b[0;1;33m",
    endc: "\x1b[0;0m",
};

const NO_COLORS: Palette = Palette {
    cyan: "",
    green: "",
    red: "",
    light_red: "",
    light_yellow: "",
    endc: "",
};

/// The palette for `color` on or off.
pub(super) fn palette(color: bool) -> &'static Palette {
    if color { &COLORS } else { &NO_COLORS }
}
