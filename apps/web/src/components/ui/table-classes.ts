/** Cell classes of the dashboard's list tables. */
export const TH = "px-3 py-2.5 text-left text-xs font-semibold uppercase tracking-wide text-slate-500 whitespace-nowrap";
export const TD = "px-3 py-3 text-sm whitespace-nowrap";
