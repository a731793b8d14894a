from .ps_score_maps import draw_ps_maps, ps_maps_for_roi

__all__ = ['ps_maps_for_roi', 'draw_ps_maps']
